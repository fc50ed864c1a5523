#pragma once
// For readers that take a path: the fuzz input as an in-memory file
// (memfd_create), reachable as /proc/self/fd/N. No disk I/O, nothing left
// behind; the descriptor closes when the object goes.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace fuzz {

class memfile {
public:
    memfile(const std::uint8_t* data, std::size_t size) : fd_(::memfd_create("fuzz", 0)) {
        if (fd_ < 0) std::abort();
        for (std::size_t done = 0; done < size;) {
            const ssize_t w = ::write(fd_, data + done, size - done);
            if (w <= 0) std::abort();
            done += static_cast<std::size_t>(w);
        }
        path_ = "/proc/self/fd/" + std::to_string(fd_);
    }
    ~memfile() { ::close(fd_); }
    memfile(const memfile&) = delete;
    memfile& operator=(const memfile&) = delete;
    const std::string& path() const { return path_; }

private:
    int fd_;
    std::string path_;
};

}  // namespace fuzz
