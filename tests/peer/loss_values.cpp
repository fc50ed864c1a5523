// Writes ssl's NT-Xent, BYOL and MoCo (InfoNCE with a queue) losses and
// their input gradients for tests/peer/lightly_loss_check.py:
//
//   loss_values DIR  ->  DIR/losses.safetensors
//
// For every case <c> (float and double, several batch sizes, temperatures
// and an easy case where the two views nearly agree) the inputs, ssl's
// values and gradients, as tensors "<c>/<name>"; metadata "case/<c>" = JSON
// {"loss": "nt_xent" | "byol" | "moco", "temperature": tau}.
//   nt_xent: z1, z2 (N, D) -> value, grad_z1, grad_z2
//   byol:    p1, p2, z1, z2 (N, D): ssl's symmetrized BYOL loss
//            cosine(p1, z2) + cosine(p2, z1) -> value, grad_p1, grad_p2
//            (the targets are stop-gradients)
//   moco:    q (B, d), k (B, d) unit rows, queue (K, d) unit rows
//            -> value, grad_q
#include <cmath>
#include <iostream>
#include <sstream>
#include <string>

#include <ssl/core/rng.hpp>
#include <ssl/io/safetensors.hpp>
#include <ssl/loss/cosine.hpp>
#include <ssl/loss/info_nce.hpp>
#include <ssl/loss/nt_xent.hpp>

namespace {

using ssl::tensor;

template <class T>
tensor<T> normal(std::size_t n, std::size_t d, ssl::philox& g, double scale = 1.0) {
    tensor<T> t({n, d});
    for (auto& v : t) v = static_cast<T>(scale * g.normal());
    return t;
}

/// b + noise * (fresh normal): a view that agrees with b up to `noise`.
template <class T>
tensor<T> near(const tensor<T>& b, double noise, ssl::philox& g) {
    tensor<T> t = normal<T>(b.dim(0), b.dim(1), g, noise);
    for (std::size_t i = 0; i < t.numel(); ++i) t.data()[i] += b.data()[i];
    return t;
}

template <class T>
tensor<T> unit_rows(tensor<T> t) {
    const std::size_t d = t.dim(1);
    for (std::size_t i = 0; i < t.dim(0); ++i) {
        double s = 0;
        for (std::size_t j = 0; j < d; ++j) s += double(t.data()[i * d + j]) * t.data()[i * d + j];
        for (std::size_t j = 0; j < d; ++j) t.data()[i * d + j] = static_cast<T>(t.data()[i * d + j] / std::sqrt(s));
    }
    return t;
}

template <class T>
tensor<T> scalar(double v) {
    tensor<T> t({1});
    t.data()[0] = static_cast<T>(v);
    return t;
}

struct writer {
    ssl::io::safetensors_file file;
    template <class T>
    void put(const std::string& c, const std::string& name, const tensor<T>& t) {
        file.tensors[c + "/" + name] = ssl::io::to_stored(t);
    }
    void meta(const std::string& c, const std::string& loss, double tau) {
        std::ostringstream os;
        os.precision(17);
        os << "{\"loss\": \"" << loss << "\", \"temperature\": " << tau << "}";
        file.metadata["case/" + c] = os.str();
    }
};

template <class T>
void nt_xent_case(writer& w, const std::string& c, std::size_t n, std::size_t d, double tau, double noise,
                  std::uint64_t seed) {
    ssl::philox g(seed, 1);
    const auto z1 = normal<T>(n, d, g, 3.0);
    const auto z2 = noise > 0 ? near(z1, noise * 3.0, g) : normal<T>(n, d, g, 3.0);
    const auto r = ssl::loss::nt_xent<T>({.temperature = tau})(z1, z2);
    w.put(c, "z1", z1), w.put(c, "z2", z2), w.put(c, "value", scalar<double>(r.value));
    w.put(c, "grad_z1", r.grad_z1), w.put(c, "grad_z2", r.grad_z2);
    w.meta(c, "nt_xent", tau);
}

template <class T>
void byol_case(writer& w, const std::string& c, std::size_t n, std::size_t d, double noise, std::uint64_t seed) {
    ssl::philox g(seed, 2);
    const auto z1 = normal<T>(n, d, g, 2.0), z2 = normal<T>(n, d, g, 2.0);
    const auto p1 = noise > 0 ? near(z2, noise * 2.0, g) : normal<T>(n, d, g, 2.0);
    const auto p2 = noise > 0 ? near(z1, noise * 2.0, g) : normal<T>(n, d, g, 2.0);
    const ssl::loss::byol_loss<T> loss;
    const auto a = loss(p1, z2), b = loss(p2, z1);
    w.put(c, "p1", p1), w.put(c, "p2", p2), w.put(c, "z1", z1), w.put(c, "z2", z2);
    w.put(c, "value", scalar<double>(a.value + b.value));
    w.put(c, "grad_p1", a.grad_p), w.put(c, "grad_p2", b.grad_p);
    w.meta(c, "byol", 0);
}

template <class T>
void moco_case(writer& w, const std::string& c, std::size_t b, std::size_t d, std::size_t k, double tau,
               double noise, std::uint64_t seed) {
    ssl::philox g(seed, 3);
    const auto q = normal<T>(b, d, g, 2.0);
    const auto key = unit_rows(noise > 0 ? near(q, noise * 2.0, g) : normal<T>(b, d, g));
    const auto queue = unit_rows(normal<T>(k, d, g));
    // Small blocks so that the online-softmax merge over several chunks is exercised.
    const auto r = ssl::loss::info_nce<T>({.temperature = tau, .block_rows = 8, .block_keys = 32})(q, key, queue);
    w.put(c, "q", q), w.put(c, "k", key), w.put(c, "queue", queue), w.put(c, "value", scalar<double>(r.value));
    w.put(c, "grad_q", r.grad_q);
    w.meta(c, "moco", tau);
}

template <class T>
void cases(writer& w, const std::string& type) {
    nt_xent_case<T>(w, type + "/nt_xent_n8_t0.5", 8, 16, 0.5, 0, 1);
    nt_xent_case<T>(w, type + "/nt_xent_n64_t0.1", 64, 32, 0.1, 0, 2);
    nt_xent_case<T>(w, type + "/nt_xent_n32_t0.2_easy", 32, 32, 0.2, 0.1, 3);
    byol_case<T>(w, type + "/byol_n8", 8, 16, 0, 4);
    byol_case<T>(w, type + "/byol_n64_easy", 64, 32, 0.1, 5);
    moco_case<T>(w, type + "/moco_b8_k64_t0.2", 8, 16, 64, 0.2, 0, 6);
    moco_case<T>(w, type + "/moco_b32_k256_t0.07_easy", 32, 32, 256, 0.07, 0.2, 7);
}

}  // namespace

int main(int argc, char** argv) {
    const std::string dir = argc > 1 ? argv[1] : ".";
    writer w;
    cases<float>(w, "f32");
    cases<double>(w, "f64");
    ssl::io::write_safetensors(dir + "/losses.safetensors", w.file);
    std::cout << "written\n";
}
