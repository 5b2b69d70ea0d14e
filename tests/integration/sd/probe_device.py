"""A model command for the device-fencing test: reports whether /dev/zero can be opened
(the test fences it off as if it were /dev/nvidia0) and what CUDA_VISIBLE_DEVICES is, then
idles until it is stopped."""
import os
import time

try:
    with open("/dev/zero", "rb") as f:
        f.read(1)
    print("OPENED", flush=True)
except OSError as e:
    print("DENIED (%s)" % e.strerror, flush=True)
print("CUDA_VISIBLE_DEVICES=%s" % os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"), flush=True)
time.sleep(120)
