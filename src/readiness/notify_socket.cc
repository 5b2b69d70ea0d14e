#include "readiness/notify_socket.h"

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace ls::readiness {

NotifySocket::NotifySocket(struct ev_loop* loop, Handler handler, void* owner)
    : handler_(handler), owner_(owner), io_(loop, &on_readable, this) {}

Result<void> NotifySocket::open() {
    UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return make_error(std::string("socket: ") + strerror(errno), errno);
    int one = 1;
    if (setsockopt(fd.get(), SOL_SOCKET, SO_PASSCRED, &one, sizeof one) != 0)
        return make_error(std::string("SO_PASSCRED: ") + strerror(errno), errno);
    // Abstract namespace: nothing on disk to clean up, gone with the daemon.
    std::string name = "llama-swap/" + std::to_string(getpid()) + "/notify";
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path + 1, name.data(), name.size());
    const socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0)
        return make_error("cannot bind the notify socket: " + std::string(strerror(errno)), errno);
    fd_ = std::move(fd);
    address_ = "@" + name;
    io_.set(fd_.get(), EV_READ);
    return {};
}

void NotifySocket::on_readable(struct ev_loop*, ev_io* w, int) {
    static_cast<NotifySocket*>(w->data)->drain();
}

void NotifySocket::drain() {
    for (int i = 0; i < 64; ++i) { // bounded per wake-up
        char buf[4096];
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
        iovec iov{buf, sizeof buf - 1};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        ssize_t n = ::recvmsg(fd_.get(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0) return; // EAGAIN, or an error that the next wake-up will show again
        pid_t sender = 0;
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
                ucred cred;
                memcpy(&cred, CMSG_DATA(c), sizeof cred);
                sender = cred.pid;
            } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                // sd_notify may pass fds (FDSTORE): we keep none of them.
                const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                int fds[16];
                memcpy(fds, CMSG_DATA(c), (count < 16 ? count : 16) * sizeof(int));
                for (size_t k = 0; k < count && k < 16; ++k) ::close(fds[k]);
            }
        }
        if (sender <= 0) continue; // unattributable: ignore
        handler_(owner_, sender, std::string_view(buf, static_cast<size_t>(n)));
    }
}

} // namespace ls::readiness
