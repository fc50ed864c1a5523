// libFuzzer harness: the tar reader of data shards (data/tar.hpp). The input
// is the archive; every regular member is read (or, for odd member numbers,
// skipped). A member the reader returns must fit in what is left of the input.
#include <ssl/data/tar.hpp>

#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
    try {
        ssl::data::tar_reader r(in, "fuzz.tar");
        ssl::data::tar_member m;
        std::vector<unsigned char> b;
        std::size_t members = 0;
        while (r.next(m)) {
            if (m.size > size || m.offset >= size) std::abort();  // nothing beyond the input is claimed
            if (m.number % 2) {
                r.skip();
            } else {
                r.read(b);
                if (b.size() != m.size) std::abort();
            }
            if (++members > size / 512) std::abort();  // every member takes at least one header block
        }
    } catch (const ssl::io_error&) {
    }
    return 0;
}
