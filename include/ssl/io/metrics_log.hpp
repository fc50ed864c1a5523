#pragma once
// A CSV metrics log (one row per record, columns fixed by the first record)
// and an SVG plot of a run: loss per step and evaluation accuracy per epoch.
// truncate_csv_log cuts a log back to a resume point.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "temp_files.hpp"

namespace ssl::io {

class csv_log {
public:
    csv_log() = default;
    /// Opens `path` for appending when `append` and the file exists (resume),
    /// else truncates it.
    csv_log(const std::filesystem::path& path, std::vector<std::string> columns, bool append = false)
        : path_(path), columns_(std::move(columns)) {
        const bool exists = append && std::filesystem::exists(path);
        out_.open(path, exists ? std::ios::app : std::ios::trunc);
        require<io_error>(out_.good(), "metrics log '", path.string(), "': cannot open for writing");
        if (!exists) {
            for (std::size_t i = 0; i < columns_.size(); ++i) out_ << (i ? "," : "") << columns_[i];
            out_ << '\n';
            out_.flush();
        }
    }
    bool is_open() const noexcept { return out_.is_open(); }
    /// One row; values in column order (whole numbers in full, others with 6
    /// significant digits, nan and inf as nan).
    void row(const std::vector<double>& values) {
        require<value_error>(values.size() == columns_.size(), "metrics log: ", values.size(), " values for ",
                             columns_.size(), " columns");
        for (std::size_t i = 0; i < values.size(); ++i) {
            if (i) out_ << ',';
            const double v = values[i];
            // whole numbers (steps, epochs) in full: the default 6 digits wrote step 1234567 as 1.23457e+06
            if (!std::isfinite(v)) out_ << "nan";
            else if (v == std::floor(v) && std::abs(v) < 1e15) out_ << static_cast<long long>(v);
            else out_ << v;
        }
        out_ << '\n';
        out_.flush();
        require<io_error>(out_.good(), "metrics log '", path_.string(), "': write failed (disk full?)");
    }

private:
    std::filesystem::path path_;
    std::vector<std::string> columns_;
    std::ofstream out_;
};

/// Keeps the header of CSV log `path` and the rows whose `column` is at most
/// `max`, rewriting the file atomically; a missing file stays missing. A run
/// resumed from its checkpoint at step `max` calls it before appending, so
/// the steps it repeats (run after that checkpoint, before a kill) are
/// logged once. A row cut short by the kill, or unreadable, is dropped too.
inline void truncate_csv_log(const std::filesystem::path& path, const std::string& column, double max) {
    if (!std::filesystem::exists(path)) return;
    std::ifstream in(path, std::ios::binary);
    require<io_error>(in.good(), "metrics log '", path.string(), "': cannot open for reading");
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    const bool cut = !lines.empty() && (in.clear(), in.seekg(-1, std::ios::end), in.get() != '\n');
    in.close();
    if (cut) lines.pop_back();  // the last row was cut short
    if (lines.empty()) return;
    auto field = [](const std::string& line, std::size_t k) -> std::string {
        std::size_t b = 0;
        for (std::size_t i = 0; i < k; ++i) {
            b = line.find(',', b);
            if (b == std::string::npos) return {};
            ++b;
        }
        return line.substr(b, line.find(',', b) - b);
    };
    std::size_t index = 0;
    while (field(lines[0], index) != column) {
        require<value_error>(!field(lines[0], index).empty(), "metrics log '", path.string(), "': no column '",
                             column, "' in its header");
        ++index;
    }
    std::string kept = lines[0] + '\n';
    for (std::size_t i = 1; i < lines.size(); ++i) {
        const std::string v = field(lines[i], index);
        char* end = nullptr;
        const double x = std::strtod(v.c_str(), &end);
        if (!v.empty() && *end == 0 && x <= max) kept += lines[i] + '\n';
    }
    write_text_atomic(path, kept, "metrics log");
}

struct series {
    std::string name;
    std::vector<std::pair<double, double>> points;  ///< (x, y)
};

namespace detail {

/// Tick values at round numbers (1, 2, 2.5 or 5 times a power of ten, at
/// least `min_step`) within [lo, hi], about five of them: 0, 0.5, 1, 1.5
/// rather than 6.37139, 59.25.
inline std::vector<double> round_ticks(double lo, double hi, double min_step = 0) {
    const double raw = (hi - lo) / 4;
    if (!(raw > 0) || !std::isfinite(raw)) return {lo};
    const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
    double step = 10 * magnitude;
    for (const double m : {1.0, 2.0, 2.5, 5.0})
        if (m * magnitude >= raw) {
            step = m * magnitude;
            break;
        }
    step = std::max(step, min_step);
    std::vector<double> ticks;
    for (double k = std::ceil(lo / step); k * step <= hi + step * 1e-9; ++k) ticks.push_back(k * step);
    return ticks;
}

/// A number for the plot: at most 6 significant digits, no trailing zeros.
inline std::string plot_number(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.6g", std::abs(v) < 1e-12 ? 0.0 : v);
    return b;
}

/// `s` with the characters XML gives a meaning (& < > ' ") escaped.
inline std::string xml_text(const std::string& s) {
    std::string r;
    for (const char c : s) {
        switch (c) {
            case '&': r += "&amp;"; break;
            case '<': r += "&lt;"; break;
            case '>': r += "&gt;"; break;
            case '\'': r += "&apos;"; break;
            case '"': r += "&quot;"; break;
            default: r += c;
        }
    }
    return r;
}

/// One panel: the series with round tick values on whole-number x (steps,
/// epochs); each legend entry ends with its series' last value.
inline std::string svg_panel(const std::vector<series>& s, double x0, double y0, double w, double h,
                             const std::string& title, const std::string& xlabel) {
    static const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"};
    double xmin = 1e300, xmax = -1e300, ymin = 1e300, ymax = -1e300;
    for (const auto& se : s)
        for (auto [x, y] : se.points)
            if (std::isfinite(y)) {
                xmin = std::min(xmin, x), xmax = std::max(xmax, x), ymin = std::min(ymin, y), ymax = std::max(ymax, y);
            }
    std::ostringstream os;
    os << "<text x='" << x0 + w / 2 << "' y='" << y0 - 8 << "' text-anchor='middle' font-size='14'>"
       << xml_text(title) << "</text>\n";
    os << "<rect x='" << x0 << "' y='" << y0 << "' width='" << w << "' height='" << h
       << "' fill='none' stroke='#444'/>\n";
    if (xmin > xmax) return os.str();
    if (xmax == xmin) xmin -= 0.5, xmax += 0.5;  // one point: in the middle
    if (ymax == ymin) ymax = ymin + 1, ymin -= 1;
    const double pad = 0.05 * (ymax - ymin);
    ymin -= pad, ymax += pad;
    auto px = [&](double x) { return x0 + (x - xmin) / (xmax - xmin) * w; };
    auto py = [&](double y) { return y0 + h - (y - ymin) / (ymax - ymin) * h; };
    for (const double y : round_ticks(ymin, ymax))
        os << "<text x='" << x0 - 4 << "' y='" << py(y) + 4 << "' text-anchor='end' font-size='10'>"
           << plot_number(y) << "</text>\n";
    for (const double x : round_ticks(xmin, xmax, 1))
        os << "<text x='" << px(x) << "' y='" << y0 + h + 14 << "' text-anchor='middle' font-size='10'>"
           << plot_number(x) << "</text>\n";
    os << "<text x='" << x0 + w / 2 << "' y='" << y0 + h + 30 << "' text-anchor='middle' font-size='11'>"
       << xml_text(xlabel) << "</text>\n";
    for (std::size_t k = 0; k < s.size(); ++k) {
        const char* c = colors[k % 5];
        os << "<polyline fill='none' stroke='" << c << "' stroke-width='1.5' points='";
        for (auto [x, y] : s[k].points)
            if (std::isfinite(y)) os << px(x) << ',' << py(y) << ' ';
        os << "'/>\n";
        for (auto [x, y] : s[k].points)
            if (std::isfinite(y) && s[k].points.size() < 60)
                os << "<circle cx='" << px(x) << "' cy='" << py(y) << "' r='2.5' fill='" << c << "'/>\n";
        std::string last;
        if (!s[k].points.empty()) last = " " + plot_number(std::round(s[k].points.back().second * 1000) / 1000);
        os << "<text x='" << x0 + 8 << "' y='" << y0 + 16 + 14 * k << "' font-size='11' fill='" << c << "'>"
           << xml_text(s[k].name) << last << "</text>\n";
    }
    return os.str();
}
}  // namespace detail

/// Writes an SVG with the loss curve (left) and accuracy curves (right).
inline void write_run_plot(const std::filesystem::path& path, const std::string& title, const series& loss,
                           const std::vector<series>& accuracy) {
    std::ostringstream os;
    os << "<svg xmlns='http://www.w3.org/2000/svg' width='900' height='360' font-family='sans-serif'>\n"
       << "<rect width='100%' height='100%' fill='white'/>\n"
       << "<text x='450' y='20' text-anchor='middle' font-size='13'>" << detail::xml_text(title) << "</text>\n";
    os << detail::svg_panel({loss}, 60, 50, 360, 250, "training loss", "step");
    os << detail::svg_panel(accuracy, 510, 50, 360, 250, "evaluation top-1 (%)", "epoch");
    os << "</svg>\n";
    write_text_atomic(path, os.str(), "plot");
}

}  // namespace ssl::io
