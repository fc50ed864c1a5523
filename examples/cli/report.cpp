// `ssl report`: one self-contained HTML page of a run (issue 21): its
// settings, loss curve, evaluation tables and figures.
//
//   ssl report RUN_DIR [--output FILE]   (default RUN_DIR/report.html)
//
// It reads what `ssl train --out RUN_DIR` and `ssl eval` write there:
//   last.safetensors   its "ssl.config" metadata (the method, its config and
//                      the trainer settings) and the position in the run
//   metrics.csv        the first and last rows, and how many there are
//   plot.svg           the loss curve (inlined when present)
//   eval.json, eval_*.json   one table each (ssl train / ssl eval --protocol)
//   STEM_lowshot.svg, STEM_layers.svg, STEM_retrieval.svg, STEM_map.svg
//                      the figures of each eval STEM.json (inlined)
// RUN_DIR, last.safetensors or metrics.csv missing, and an eval JSON that is
// not what ssl writes, are errors naming the file. Text from the files is
// HTML-escaped; an SVG is inlined only when it looks like one ssl writes (an
// <svg> element, no script, event handler or foreign object), else the page
// says why it is left out.
#include "common.hpp"

#include <ssl/io/metrics_log.hpp>
#include <ssl/io/temp_files.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace cli {

// named, not anonymous: the program builds as unity translation units
// (shards.cpp has its own opts())
namespace report_page {

struct report_options {
    std::string run_dir, output;
};

report_options& opts() {
    static report_options o;
    return o;
}

/// Text from files, escaped for HTML (the run plot's XML escaping: & < > ' ").
std::string html(const std::string& s) { return ssl::io::detail::xml_text(s); }

std::string read_text(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    if (!f) throw ssl::io_error("cannot read '" + p.string() + "'");
    std::ostringstream os;
    os << f.rdbuf();
    if (f.bad()) throw ssl::io_error("cannot read '" + p.string() + "'");
    return os.str();
}

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

/// The SVG element of a file ssl wrote (an XML prolog dropped), or why it is not inlined.
std::pair<std::string, std::string> svg_of(const fs::path& p) {
    std::string s = read_text(p);
    std::size_t b = s.find_first_not_of(" \t\r\n");
    if (b != std::string::npos && s.compare(b, 5, "<?xml") == 0) {
        const auto e = s.find("?>", b);
        b = e == std::string::npos ? std::string::npos : s.find_first_not_of(" \t\r\n", e + 2);
    }
    if (b == std::string::npos || s.compare(b, 4, "<svg") != 0) return {"", "it does not start with an <svg> element"};
    s = s.substr(b);
    const std::string l = lower(s);
    for (const char* bad : {"<script", "<foreignobject", "javascript:", "<iframe", "<!entity"})
        if (l.find(bad) != std::string::npos) return {"", std::string("it contains '") + bad + "'"};
    // event handler attributes: whitespace, "on", letters, optional space, '='
    for (std::size_t i = 0; i + 3 < l.size(); ++i) {
        if (!std::isspace(static_cast<unsigned char>(l[i])) || l[i + 1] != 'o' || l[i + 2] != 'n') continue;
        std::size_t j = i + 3;
        while (j < l.size() && std::isalpha(static_cast<unsigned char>(l[j]))) ++j;
        while (j < l.size() && std::isspace(static_cast<unsigned char>(l[j]))) ++j;
        if (j > i + 3 && j < l.size() && l[j] == '=') return {"", "it has an event handler attribute"};
    }
    const auto end = s.rfind("</svg>");
    if (end == std::string::npos) return {"", "it has no closing </svg>"};
    return {s.substr(0, end + 6), ""};
}

/// A figure section: the SVG inlined, or a note saying why not.
std::string figure(const fs::path& p, const std::string& id, const std::string& caption, std::size_t& count) {
    const auto [svg, why] = svg_of(p);
    const std::string name = p.filename().string();
    if (svg.empty())
        return "<p class=\"note\">" + html(name) + " is not inlined: " + html(why) + ".</p>\n";
    ++count;
    return "<figure class=\"figure\" id=\"" + html(id) + "\">\n" + svg + "\n<figcaption>" + html(caption) + " (" +
           html(name) + ")</figcaption>\n</figure>\n";
}

/// key = value rows of a JSON document, nested keys joined by '.'.
void flatten(const nlohmann::json& j, const std::string& prefix, std::vector<std::pair<std::string, std::string>>& out) {
    if (j.is_object() && !j.empty()) {
        for (const auto& [k, v] : j.items()) flatten(v, prefix.empty() ? k : prefix + "." + k, out);
    } else {
        out.emplace_back(prefix, j.is_string() ? j.get<std::string>() : j.dump());
    }
}

std::string table(const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows) {
    std::string s = "<table>\n<tr>";
    for (const auto& h : head) s += "<th>" + html(h) + "</th>";
    s += "</tr>\n";
    for (const auto& r : rows) {
        s += "<tr>";
        for (const auto& c : r) s += "<td>" + html(c) + "</td>";
        s += "</tr>\n";
    }
    return s + "</table>\n";
}

std::string percent(const nlohmann::json& v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.2f", 100.0 * v.get<double>()  /* type_error unless a number */);
    return b;
}

/// The table of one eval JSON (as report_suite writes it).
std::string eval_table(const nlohmann::json& j) {
    std::vector<std::vector<std::string>> rows;
    if (j.contains("knn"))
        rows.push_back({"knn", "k=" + j["knn"].at("k").dump() + " T=" + j["knn"].at("temperature").dump(),
                        percent(j["knn"].at("top1")), ""});
    if (j.contains("linear")) rows.push_back({"linear", "logistic probe", percent(j["linear"].at("top1")), ""});
    if (j.contains("svm"))
        rows.push_back({"svm", "C=" + j["svm"].at("cost").dump() + " (3-fold CV)", percent(j["svm"].at("test_top1")), ""});
    if (j.contains("lowshot"))
        for (const auto& r : j["lowshot"].at("rows"))
            rows.push_back({"lowshot", "k=" + r.at("k").dump() + " (" + std::to_string(r.at("top1").size()) + " draws)",
                            percent(r.at("mean")), percent(r.at("std"))});
    if (j.contains("layers"))
        for (const auto& r : j["layers"].at("rows"))
            rows.push_back({"layers", r.at("layer").get<std::string>() + " " + r.at("map").get<std::string>() + " -> " +
                                          r.at("dim").dump() + " dims",
                            percent(r.at("test_top1")), ""});
    if (j.contains("finetune"))
        for (const auto& r : j["finetune"].at("rows"))
            rows.push_back({"finetune", r.at("fraction").dump() + " of the labels (" + r.at("images").dump() +
                                            " images), " + r.at("epochs").dump() + " epochs",
                            percent(r.at("test_top1")), ""});
    std::string s = "<p>" + html(j.at("encoder").get<std::string>()) + " encoder; " + j.at("eval_train_images").dump() +
                    " train / " + j.at("eval_test_images").dump() + " test images; protocols " +
                    html(j.at("protocols").get<std::string>()) + "</p>\n";
    if (j.contains("skipped")) s += "<p class=\"note\">skipped: " + html(j["skipped"].get<std::string>()) + "</p>\n";
    if (!rows.empty()) s += table({"protocol", "setting", "top-1 %", "std %"}, rows);
    return s;
}

CLI::App* add_command(CLI::App& app) {
    auto* c = app.add_subcommand("report", "one self-contained HTML page of a run: settings, loss curve, evaluation "
                                           "tables and figures");
    c->add_option("RUN_DIR", opts().run_dir, "the run's directory (ssl train --out)")->required();
    c->add_option("--output", opts().output, "the page (default RUN_DIR/report.html)");
    return c;
}

int run() {
    const auto& o = opts();
    const fs::path dir(o.run_dir);
    std::error_code ec;
    if (!fs::exists(dir, ec)) throw ssl::io_error("run directory '" + o.run_dir + "' does not exist");
    if (!fs::is_directory(dir, ec)) throw ssl::io_error("'" + o.run_dir + "' is not a directory (give the run's directory, ssl train --out)");
    const fs::path last = dir / "last.safetensors", metrics = dir / "metrics.csv";
    if (!fs::exists(last, ec))
        throw ssl::io_error("'" + last.string() + "' is missing: `ssl train --out " + o.run_dir +
                            "` writes it at the end of every epoch (is this a run's directory?)");
    if (!fs::exists(metrics, ec))
        throw ssl::io_error("'" + metrics.string() + "' is missing: `ssl train --out " + o.run_dir +
                            "` writes it, one row per step");
    std::size_t figures = 0, tables = 0;
    std::string body;
    // settings
    const auto meta = ssl::io::read_safetensors_metadata(last);  // the header only
    body += "<h2>Settings</h2>\n";
    std::vector<std::vector<std::string>> settings;
    for (const char* k : {"epoch", "global_step"})
        if (auto it = meta.find(k); it != meta.end()) settings.push_back({k, it->second});
    if (run_document::from_metadata(meta, last.string())) {  // validates: a damaged document is an error
        std::vector<std::pair<std::string, std::string>> kv;
        flatten(nlohmann::json::parse(meta.at(run_document::key)), "", kv);
        for (auto& [k, v] : kv) settings.push_back({k, v});
    } else {
        body += "<p class=\"note\">" + html(last.filename().string()) + " has no '" + run_document::key +
                "' metadata (written before runs stored their config).</p>\n";
    }
    body += table({"setting", "value"}, settings);
    // training: metrics.csv and the loss curve
    body += "<h2>Training</h2>\n";
    {
        std::ifstream f(metrics);
        if (!f) throw ssl::io_error("cannot read '" + metrics.string() + "'");
        std::string header, first, lastrow, line;
        std::size_t n = 0;
        std::getline(f, header);
        while (std::getline(f, line))
            if (!line.empty()) {
                if (!n) first = line;
                lastrow = line, ++n;
            }
        if (header.empty()) throw ssl::io_error("'" + metrics.string() + "' is empty (no header row)");
        auto cells = [](const std::string& l) {
            std::vector<std::string> c;
            std::stringstream ss(l);
            for (std::string x; std::getline(ss, x, ',');) c.push_back(x);
            return c;
        };
        std::vector<std::vector<std::string>> rows;
        if (n) rows.push_back(cells(first));
        if (n > 1) rows.push_back(cells(lastrow));
        body += "<p>metrics.csv: " + std::to_string(n) + " rows" + (n > 1 ? " (the first and the last)" : "") + "</p>\n" +
                table(cells(header), rows);
    }
    if (fs::exists(dir / "plot.svg", ec))
        body += figure(dir / "plot.svg", "fig-plot", "loss per step and evaluation per epoch", figures);
    else
        body += "<p class=\"note\">no plot.svg (ssl train writes it after every epoch).</p>\n";
    // evaluations
    std::vector<fs::path> evals;
    for (const auto& e : fs::directory_iterator(dir)) {
        const std::string name = e.path().filename().string();
        if (e.path().extension() == ".json" && (name == "eval.json" || name.rfind("eval_", 0) == 0)) evals.push_back(e.path());
    }
    std::sort(evals.begin(), evals.end());
    body += "<h2>Evaluation</h2>\n";
    if (evals.empty())
        body += "<p class=\"note\">no eval.json or eval_*.json (ssl eval --protocol ... or ssl train --protocol with "
                "more than knn,linear writes them).</p>\n";
    for (const auto& e : evals) {
        const std::string stem = e.stem().string();
        std::string section;
        try {
            const auto j = nlohmann::json::parse(read_text(e));
            if (!j.is_object()) throw ssl::io_error("'" + e.string() + "' is not a JSON object");
            section = eval_table(j);
        } catch (const nlohmann::json::exception& x) {
            throw ssl::io_error("'" + e.string() + "' is not an evaluation ssl writes: " + x.what());
        }
        ++tables;
        body += "<h3>" + html(e.filename().string()) + "</h3>\n" + section;
        const std::pair<const char*, const char*> kinds[] = {
            {"lowshot", "low-shot accuracy against k"},
            {"layers", "linear probe accuracy against layer"},
            {"retrieval", "test images and their nearest training images"},
            {"map", "2-D PCA map of the test features"}};
        for (const auto& [kind, caption] : kinds) {
            const fs::path p = dir / (stem + "_" + kind + ".svg");
            if (fs::exists(p, ec)) body += figure(p, "fig-" + stem + "-" + kind, caption, figures);
        }
    }
    const std::string title = "ssl report: " + dir.filename().string();
    const std::string page =
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" + html(title) +
        "</title>\n<style>\nbody{font-family:sans-serif;margin:2em;max-width:70em}\ntable{border-collapse:collapse;"
        "margin:0.5em 0}\ntd,th{border:1px solid #ccc;padding:2px 8px;text-align:left}\nfigure{margin:1em 0}\n"
        "figure svg{max-width:100%;height:auto}\n.note{color:#666}\n</style>\n</head>\n<body>\n<h1>" +
        html(title) + "</h1>\n<p>" + html(fs::absolute(dir).lexically_normal().string()) + "</p>\n" + body +
        "</body>\n</html>\n";
    const fs::path out = o.output.empty() ? dir / "report.html" : fs::path(o.output);
    ssl::io::write_text_atomic(out, page, "report");
    std::printf("wrote %s (%zu evaluation tables, %zu figures)\n", out.string().c_str(), tables, figures);
    return 0;
}

}  // namespace report_page

CLI::App* add_report_command(CLI::App& app) { return report_page::add_command(app); }
int run_report_command() { return report_page::run(); }

}  // namespace cli
