// A fixed-capacity ring: the newest `capacity` items, oldest first. Event loop thread only.
#pragma once

#include <cstddef>
#include <vector>

namespace ls::perf {

template <typename T>
class Ring {
public:
    explicit Ring(size_t capacity = 1) : cap_(capacity ? capacity : 1) {}
    void push(T item) {
        if (items_.size() < cap_) {
            items_.push_back(std::move(item));
            return;
        }
        items_[head_] = std::move(item);
        head_ = (head_ + 1) % cap_;
    }
    size_t size() const { return items_.size(); }
    size_t capacity() const { return cap_; }
    bool empty() const { return items_.empty(); }
    // i = 0 is the oldest.
    const T& at(size_t i) const { return items_[(head_ + i) % items_.size()]; }
    const T* newest() const { return items_.empty() ? nullptr : &at(items_.size() - 1); }
    // Keeps the newest items that fit.
    void set_capacity(size_t capacity) {
        Ring<T> r(capacity);
        for (size_t i = 0; i < size(); ++i) r.push(at(i));
        *this = std::move(r);
    }
    void clear() {
        items_.clear();
        head_ = 0;
    }

private:
    size_t cap_;
    size_t head_ = 0; // the oldest item once full
    std::vector<T> items_;
};

} // namespace ls::perf
