// A test helper of the `ssl` program's tests: copies a safetensors file with
// one metadata entry changed, to check what `ssl` does with checkpoints whose
// stored config is damaged, incomplete or absent.
//
//   ssl_test_metadata IN OUT KEY set TEXT          metadata[KEY] = TEXT
//   ssl_test_metadata IN OUT KEY erase             no metadata[KEY]
//   ssl_test_metadata IN OUT KEY remove POINTER    metadata[KEY] is JSON: remove the value at POINTER
//                                                  (a JSON pointer: /config/head/classes)
//   ssl_test_metadata IN OUT KEY clear             no metadata at all (KEY is ignored)
//   ssl_test_metadata IN OUT KEY nest POINTER N    metadata[KEY] is JSON: the value at POINTER becomes N nested arrays
//   ssl_test_metadata IN OUT KEY put POINTER JSON  metadata[KEY] is JSON: set the value at POINTER to JSON
//   ssl_test_metadata IN OUT NAME nan              the first value of F32 tensor NAME becomes nan
#include <ssl/io/safetensors.hpp>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

int main(int argc, char** argv) {
    if (argc < 5) {
        std::fprintf(stderr, "usage: %s IN OUT KEY set TEXT | erase | remove POINTER | put POINTER JSON | nest POINTER N | clear | nan\n",
                     argv[0]);
        return 2;
    }
    try {
        auto f = ssl::io::read_safetensors(argv[1]);
        const std::string key = argv[3], op = argv[4];
        if (op == "set" && argc == 6) {
            f.metadata[key] = argv[5];
        } else if (op == "erase" && argc == 5) {
            f.metadata.erase(key);
        } else if (op == "put" && argc == 7) {
            auto j = nlohmann::json::parse(f.metadata.at(key));
            j[nlohmann::json::json_pointer(argv[5])] = nlohmann::json::parse(argv[6]);
            f.metadata[key] = j.dump();
        } else if (op == "nest" && argc == 7) {
            // the value at POINTER becomes DEPTH nested arrays, written as
            // text (dump() of such a value would recurse DEPTH levels)
            auto j = nlohmann::json::parse(f.metadata.at(key));
            j[nlohmann::json::json_pointer(argv[5])] = "__nest__";
            std::string text = j.dump();
            const std::size_t depth = std::stoul(argv[6]);
            text.replace(text.find("\"__nest__\""), 10, std::string(depth, '[') + std::string(depth, ']'));
            f.metadata[key] = text;
        } else if (op == "nan" && argc == 5) {
            auto& t = f.tensors.at(key);
            if (t.dtype != ssl::io::dtype::F32 || t.data.size() < sizeof(float))
                throw std::runtime_error("tensor '" + key + "' is not a non-empty F32 tensor");
            const float nan = std::numeric_limits<float>::quiet_NaN();
            std::memcpy(t.data.data(), &nan, sizeof nan);
        } else if (op == "clear" && argc == 5) {
            f.metadata.clear();
        } else if (op == "remove" && argc == 6) {
            auto j = nlohmann::json::parse(f.metadata.at(key));
            const nlohmann::json::json_pointer p(argv[5]);
            j[p.parent_pointer()].erase(p.back());
            f.metadata[key] = j.dump();
        } else {
            std::fprintf(stderr, "%s: unknown operation '%s'\n", argv[0], op.c_str());
            return 2;
        }
        ssl::io::write_safetensors(argv[2], f);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
        return 1;
    }
    return 0;
}
