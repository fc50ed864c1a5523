// plot.svg: round tick values, the title escaped, the last value of each
// series in its legend, and an end-of-run evaluation of an epoch already
// evaluated replacing that point.
#include <doctest/doctest.h>

#include <ssl/io/metrics_log.hpp>
#include <ssl/train/run_plot.hpp>

#include "temp_files.hpp"

#include <string>
#include <vector>

namespace test_plot {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::io::detail::round_ticks;

TEST_CASE("plot: round tick values") {
    CHECK(round_ticks(0.9, 6.4) == std::vector<double>{2, 4, 6});
    CHECK(round_ticks(25.1, 26.2) == std::vector<double>{25.5, 26});
    CHECK(round_ticks(1, 1234, 1) == std::vector<double>{500, 1000});
    CHECK(round_ticks(1, 2, 1) == std::vector<double>{1, 2});  // whole-number axes step by 1 at least
    CHECK(round_ticks(-0.3, 0.3) == std::vector<double>{-0.2, 0, 0.2});
    CHECK(round_ticks(3, 3) == std::vector<double>{3});
    CHECK(ssl::io::detail::plot_number(0.1 + 0.2) == "0.3");
}

TEST_CASE("plot: the title, the ticks and the legend's last values in the SVG") {
    ssl_test::temp_dir d("plot_svg");
    std::filesystem::create_directories(d.path);
    ssl::train::run_plot plot(d.path / "plot.svg", "rotnet, resnet18 width 4, idx:a&b.gz: batch 32");
    for (std::size_t s = 1; s <= 40; ++s)
        plot.step_end({.step = s, .loss = 6.37139 - 0.12345 * static_cast<double>(s)});
    const std::vector<std::pair<std::string, double>> first{{"kNN", 59.25}}, again{{"kNN", 61.0}};
    plot.evaluated({.epoch = 0, .results = first});
    plot.evaluated({.epoch = 0, .results = again});  // the end-of-run evaluation of the same epoch
    const std::string svg = ssl_test::read_text(d.path / "plot.svg");
    CHECK(svg.find("idx:a&amp;b.gz: batch 32") != std::string::npos);
    CHECK(svg.find(">6.37139<") == std::string::npos);  // ticks are round numbers, not the data's extremes
    CHECK(svg.find(">6<") != std::string::npos);
    CHECK(svg.find(">40<") != std::string::npos);
    CHECK(svg.find(">kNN 61<") != std::string::npos);  // one point, the last value in the legend
    CHECK(svg.find("59.25") == std::string::npos);
    CHECK(svg.find(">loss 1.433<") != std::string::npos);
}

}  // namespace test_plot
