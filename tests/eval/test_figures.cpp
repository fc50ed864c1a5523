#include <doctest/doctest.h>

#include <ssl/eval/figures.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace test_figures {  // each file in its own namespace: an area builds as one unity translation unit

namespace fig = ssl::eval::figures;

std::string b64(const std::string& s) {
    return fig::base64({reinterpret_cast<const unsigned char*>(s.data()), s.size()});
}

std::size_t count(const std::string& s, const std::string& what) {
    std::size_t n = 0;
    for (auto p = s.find(what); p != std::string::npos; p = s.find(what, p + what.size())) ++n;
    return n;
}

/// A complete, self-contained SVG document whose tags balance (every open
/// tag closed, self-closing ones aside) and which references nothing outside.
void check_document(const std::string& s) {
    CHECK(s.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0) == 0);
    CHECK(s.find("</svg>") == s.size() - 7);
    std::vector<std::string> open;
    for (std::size_t p = s.find('<'); p != std::string::npos; p = s.find('<', p + 1)) {
        const std::size_t e = s.find('>', p);
        REQUIRE(e != std::string::npos);
        const std::string tag = s.substr(p + 1, e - p - 1);
        REQUIRE(!tag.empty());
        if (tag[0] == '/') {
            REQUIRE(!open.empty());
            CHECK(open.back() == tag.substr(1));
            open.pop_back();
        } else if (tag.back() != '/') {
            open.push_back(tag.substr(0, tag.find(' ')));
        }
    }
    CHECK(open.empty());
    // the only URL is the namespace; images are data URIs
    CHECK(count(s, "http") == 1);
    CHECK(count(s, "href=\"") == count(s, "href=\"data:image/png;base64,"));
}

TEST_CASE("base64: the RFC 4648 test vectors") {
    CHECK(b64("") == "");
    CHECK(b64("f") == "Zg==");
    CHECK(b64("fo") == "Zm8=");
    CHECK(b64("foo") == "Zm9v");
    CHECK(b64("foob") == "Zm9vYg==");
    CHECK(b64("fooba") == "Zm9vYmE=");
    CHECK(b64("foobar") == "Zm9vYmFy");
    const std::vector<unsigned char> all{0x00, 0xff, 0xfe, 0x3e, 0x3f};
    CHECK(fig::base64(all) == "AP/+Pj8=");
}

TEST_CASE("png_data_uri: a PNG (its signature in base64), bad sizes refused") {
    fig::labelled_image im{std::vector<std::uint8_t>(3 * 4 * 5, 7), 3, 4, 5, 0};
    const auto uri = fig::png_data_uri(im);
    CHECK(uri.rfind("data:image/png;base64,iVBORw0KGgo", 0) == 0);  // \x89PNG\r\n\x1a\n
    im.chw.pop_back();
    CHECK_THROWS_AS(fig::png_data_uri(im), ssl::value_error);
}

TEST_CASE("line_chart: one point and error bar per value, round ticks, log-2 axis at powers of two") {
    std::vector<fig::chart_point> pts{{1, 30.5, 2}, {2, 41.25, 1.5}, {4, 52, 0}, {8, 60, 3}, {96, 71.7, 0.5}};
    const auto s = fig::line_chart(pts, {.title = "low-shot <svm> & co", .xlabel = "k", .ylabel = "top-1 %",
                                         .log2_x = true});
    check_document(s);
    CHECK(count(s, "class=\"point\"") == 5);
    CHECK(count(s, "class=\"errorbar\"") == 4);  // err 0: no bar
    CHECK(s.find("low-shot &lt;svm&gt; &amp; co") != std::string::npos);
    CHECK(s.find("<svm>") == std::string::npos);
    // x ticks: powers of two; y ticks: round numbers (multiples of 1, 2, 2.5 or 5 times a power of ten)
    for (std::size_t p = s.find("class=\"xtick\""); p != std::string::npos; p = s.find("class=\"xtick\"", p + 1)) {
        const auto a = s.find('>', p) + 1;
        const long v = std::strtol(s.substr(a, s.find('<', a) - a).c_str(), nullptr, 10);
        CHECK(v > 0);
        CHECK((v & (v - 1)) == 0);
    }
    CHECK(count(s, "class=\"xtick\"") == 8);  // 1, 2, 4, ..., 128 (96 is log2 6.58; the axis reaches 7.08)
    std::size_t yticks = 0;
    for (std::size_t p = s.find("class=\"ytick\""); p != std::string::npos; p = s.find("class=\"ytick\"", p + 1)) {
        const auto a = s.find('>', p) + 1;
        const double v = std::strtod(s.substr(a, s.find('<', a) - a).c_str(), nullptr);
        CHECK(std::fmod(v, 5.0) == 0.0);  // 27.6 .. 75.0 at about five ticks: a step of 10 or 5
        ++yticks;
    }
    CHECK(yticks >= 3);
    CHECK_THROWS_AS(fig::line_chart({{0, 1, 0}}, {.log2_x = true}), ssl::value_error);
    CHECK_THROWS_AS(fig::line_chart({{1, std::nan(""), 0}}, {}), ssl::value_error);
    check_document(fig::line_chart({}, {.title = "empty"}));
}

TEST_CASE("line_chart: categorical x (layers) names each position") {
    std::vector<fig::chart_point> pts{{0, 20, 0}, {0, 35, 0}, {0, 33, 0}};
    const auto s = fig::line_chart(pts, {.title = "layers", .x_names = {"relu", "layer1", "a&b"}});
    check_document(s);
    CHECK(count(s, "class=\"point\"") == 3);
    CHECK(count(s, "class=\"xtick\"") == 3);
    CHECK(s.find(">a&amp;b</text>") != std::string::npos);
    CHECK_THROWS_AS(fig::line_chart(pts, {.x_names = {"one"}}), ssl::value_error);
}

TEST_CASE("retrieval_grid: every image embedded, borders by class, names escaped") {
    auto img = [](std::int64_t label, std::uint8_t v) {
        return fig::labelled_image{std::vector<std::uint8_t>(8 * 8, v), 1, 8, 8, label};
    };
    std::vector<fig::retrieval_row> rows;
    for (int r = 0; r < 3; ++r) {
        fig::retrieval_row row{img(r % 2, 10), {}, {}};
        for (int j = 0; j < 5; ++j) {
            row.neighbours.push_back(img(j < 3 ? r % 2 : 1 - r % 2, static_cast<std::uint8_t>(j * 40)));
            row.similarity.push_back(0.9 - 0.1 * j);
        }
        rows.push_back(row);
    }
    const auto s = fig::retrieval_grid(rows, {"T-shirt/top", "<Trouser>"}, "retrieval");
    check_document(s);
    CHECK(count(s, "class=\"tile\"") == 18);
    CHECK(count(s, "href=\"data:image/png;base64,") == 18);
    CHECK(count(s, "class=\"neighbour same\"") == 9);
    CHECK(count(s, "class=\"neighbour other\"") == 6);
    CHECK(count(s, "stroke=\"#2ca02c\"") == 9);
    CHECK(count(s, "stroke=\"#d62728\"") == 6);
    CHECK(s.find("&lt;Trouser&gt;") != std::string::npos);
    CHECK(s.find("<Trouser>") == std::string::npos);
    rows[0].similarity.pop_back();
    CHECK_THROWS_AS(fig::retrieval_grid(rows, {}, "t"), ssl::value_error);
}

TEST_CASE("class_map: a point per row, a legend entry per class present") {
    std::vector<fig::map_point> pts;
    for (int i = 0; i < 50; ++i) pts.push_back({i * 0.37, std::sin(i * 1.0), i % 3});
    const auto s = fig::class_map(pts, {"a", "b<", "c"}, "map");
    check_document(s);
    CHECK(count(s, "class=\"point\"") == 50);
    CHECK(count(s, "class=\"legend-entry\"") == 3);
    CHECK(s.find(">b&lt;</text>") != std::string::npos);
    // without names: "class N"; more than 20 classes: the rest counted
    std::vector<fig::map_point> many;
    for (int i = 0; i < 30; ++i) many.push_back({double(i), double(i % 7), i});
    const auto m = fig::class_map(many, {}, "many");
    check_document(m);
    CHECK(count(m, "class=\"legend-entry\"") == 20);
    CHECK(m.find(">class 0</text>") != std::string::npos);
    CHECK(m.find("and 10 more classes") != std::string::npos);
    CHECK_THROWS_AS(fig::class_map({{0, 0, -1}}, {}, "t"), ssl::value_error);
    CHECK_THROWS_AS(fig::class_map({{std::nan(""), 0, 0}}, {}, "t"), ssl::value_error);
}

TEST_CASE("nearest_neighbours: cosine order, k clamped; seeded_choice; pca_2d") {
    ssl::tensor<float> train({4, 2});
    const float t[] = {1, 0, 0, 1, 2, 0.1f, -1, 0};
    std::copy(t, t + 8, train.data());
    ssl::tensor<float> q({1, 2});
    q.data()[0] = 1, q.data()[1] = 0;
    const auto nn = fig::nearest_neighbours(train, q, 10);
    REQUIRE(nn.size() == 1);
    REQUIRE(nn[0].size() == 4);
    CHECK(nn[0][0].first == 0);
    CHECK(nn[0][1].first == 2);
    CHECK(nn[0][2].first == 1);
    CHECK(nn[0][3].first == 3);
    CHECK(nn[0][0].second == doctest::Approx(1.0));
    CHECK(nn[0][3].second == doctest::Approx(-1.0));
    CHECK_THROWS_AS(fig::nearest_neighbours(train, ssl::tensor<float>({1, 3}), 1), ssl::shape_error);

    const auto a = fig::seeded_choice(100, 8, 7), b = fig::seeded_choice(100, 8, 7), c = fig::seeded_choice(100, 8, 8);
    CHECK(a == b);
    CHECK(a != c);
    CHECK(a.size() == 8);
    CHECK(std::is_sorted(a.begin(), a.end()));
    CHECK(std::adjacent_find(a.begin(), a.end()) == a.end());
    CHECK(fig::seeded_choice(3, 8, 1) == std::vector<std::size_t>{0, 1, 2});

    const auto p = fig::pca_2d(train);
    CHECK(p.size() == 4);
    ssl::tensor<float> line({3, 1});
    line.data()[0] = 0, line.data()[1] = 1, line.data()[2] = 3;
    const auto p1 = fig::pca_2d(line);
    CHECK(p1[2].second == 0.0);
    CHECK(std::abs(p1[2].first - p1[0].first) == doctest::Approx(3.0));
}

TEST_CASE("pca_2d: above exact_pca_max_dim, subspace iteration finds the components exact PCA finds") {
    // 300 rows of 300 dims: two strong directions (scales 10 and 5), noise 0.1
    const std::size_t n = 300, d = 300;
    ssl::tensor<float> x({n, d});
    std::uint64_t st = 1;
    auto u = [&st] {  // splitmix64 in [-1, 1)
        std::uint64_t z = (st += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return static_cast<double>((z ^ (z >> 31)) >> 11) / 4503599627370496.0 - 1.0;
    };
    for (std::size_t i = 0; i < n; ++i) {
        const double a = 10 * u(), b = 5 * u();
        for (std::size_t j = 0; j < d; ++j)
            x.data()[i * d + j] = static_cast<float>((j == 3 ? a : 0) + (j == 7 ? b : 0) + 0.1 * u());
    }
    REQUIRE(d > fig::exact_pca_max_dim);
    const auto fast = fig::pca_2d(x);
    ssl::cluster::pca<float> exact({.dims = 2, .whiten = false});
    const auto y = exact.fit_transform(x);
    for (std::size_t i = 0; i < n; ++i) {
        CHECK(fast[i].first == doctest::Approx(y.data()[i * 2]).epsilon(1e-3).scale(10));
        CHECK(fast[i].second == doctest::Approx(y.data()[i * 2 + 1]).epsilon(1e-3).scale(10));
    }
}

}  // namespace test_figures
