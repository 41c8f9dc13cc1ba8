//! Writing a [`Report`] as Markdown and as a hand-made SVG bar chart.

use crate::compare::{FileResult, Report};
use std::fmt::Write;

fn f(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}"))
        .unwrap_or_else(|| "–".into())
}

/// The report as Markdown: one table per file, the issue's targets, skipped tools, truth checks.
pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# tcp-sniffer side-by-side comparison\n");
    let _ = writeln!(
        s,
        "Machine: {} ({} CPUs available), kernel {}. Median of {} runs per tool; tools run interleaved, page cache warm.\n",
        r.machine["cpuModel"].as_str().unwrap_or("?"),
        r.machine["cpusAvailable"],
        r.machine["kernel"].as_str().unwrap_or("?"),
        r.runs
    );
    let _ = writeln!(s, "Columns: **wall** median elapsed seconds; **CPU** median user+system seconds of the child; **RSS** median peak resident set (MiB); **MB/s** file size ÷ median wall; **CPU s/GB** CPU seconds per 10⁹ bytes of pcap; **× tcp-sniffer** this tool's wall ÷ tcp-sniffer's (above 1: tcp-sniffer is that many times faster); **output** lines written (tshark: HTTP packets, httpry: records, tcp-sniffer: messages) or flow files (tcpflow). **tcp-sniffer-pair** is two one-worker tcp-sniffer runs at once, each over the whole file: wall until both end, CPU of both, its MB/s counting the file once.\n");
    for fr in &r.files {
        file_table(&mut s, fr);
    }
    let _ = writeln!(s, "## Tool versions\n");
    for (t, v) in &r.tool_versions {
        let _ = writeln!(s, "- {t}: {}", if v.is_empty() { "(not run)" } else { v });
    }
    s
}

fn file_table(s: &mut String, fr: &FileResult) {
    let _ = writeln!(
        s,
        "## {} — `{}` ({:.1} MB, {} packets{})\n",
        fr.workload,
        fr.file,
        fr.bytes as f64 / 1e6,
        fr.packets,
        fr.expected_messages
            .map(|n| format!(", {n} expected messages"))
            .unwrap_or_default()
    );
    let _ = writeln!(s, "| tool | wall s | CPU s | RSS MiB | MB/s | kpackets/s | CPU s/GB | × tcp-sniffer | output |");
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for t in &fr.results {
        if t.status != "ok" {
            let _ = writeln!(s, "| {} | {} | | | | | | | |", t.tool, t.status);
            continue;
        }
        let m = t.median.unwrap_or_default();
        let _ = writeln!(
            s,
            "| {} | {:.3} | {:.3} | {:.1} | {} | {} | {} | {} | {} |",
            t.tool,
            m.wall_s,
            m.cpu_s(),
            m.max_rss_kib as f64 / 1024.0,
            f(t.mb_per_s, 1),
            f(t.packets_per_s.map(|p| p / 1e3), 0),
            f(t.cpu_s_per_gb, 2),
            f(t.wall_vs_sniffer, 2),
            t.output_count
                .map(|n| n.to_string())
                .unwrap_or_else(|| "–".into())
        );
    }
    let notes: Vec<_> = fr.results.iter().filter(|t| !t.note.is_empty()).collect();
    if !notes.is_empty() {
        let _ = writeln!(s);
        for t in notes {
            let _ = writeln!(s, "- **{}**: {}", t.tool, t.note);
        }
    }
    let get = |name: &str| {
        fr.results
            .iter()
            .find(|t| t.tool == name)
            .and_then(|t| t.median)
            .map(|m| m.wall_s)
    };
    // The issue-8 speed targets are stated for workload S only.
    if let Some(sn) = get("tcp-sniffer").filter(|_| fr.workload == "S") {
        let _ = writeln!(
            s,
            "\nTargets (issue 8; they apply to workload S with one worker):\n"
        );
        let target =
            |s: &mut String, what: &str, v: Option<f64>, ok: &dyn Fn(f64) -> bool, goal: &str| {
                let _ = match v {
                    Some(v) => {
                        // Two decimals, or three where two would round across the goal
                        // (1.697 shown as 1.70 beside "NOT met" reads as a bug).
                        let places = if ok((v * 100.0).round() / 100.0) != ok(v) {
                            3
                        } else {
                            2
                        };
                        writeln!(
                            s,
                            "- {what}: {v:.places$}× (target {goal}) — {}",
                            if ok(v) { "met" } else { "NOT met" }
                        )
                    }
                    None => writeln!(s, "- {what}: not measured"),
                };
            };
        target(
            s,
            "tshark wall ÷ tcp-sniffer wall",
            get("tshark").map(|t| t / sn),
            &|v| v >= 50.0,
            "≥ 50×",
        );
        target(
            s,
            "tcpflow wall ÷ tcp-sniffer wall",
            get("tcpflow").map(|t| t / sn),
            &|v| v >= 3.0,
            "≥ 3×",
        );
        target(
            s,
            "tcp-sniffer wall ÷ tcpdump read floor",
            get("tcpdump").map(|t| sn / t),
            &|v| v <= 4.0,
            "≤ 4×; stretch ≤ 3×",
        );
        if let Some(sn2) = get(crate::compare::SNIFFER_2W) {
            target(
                s,
                "tcp-sniffer with 2 workers: wall ÷ tcpdump read floor",
                get("tcpdump").map(|t| sn2 / t),
                &|v| v <= 2.5,
                "≤ 2.5×; stretch ≤ 2×",
            );
            target(
                s,
                "tcp-sniffer: 1 worker's wall ÷ 2 workers' wall",
                Some(sn / sn2),
                &|v| v >= 1.7,
                "≥ 1.7×",
            );
        }
        if let Some(pair) = get(crate::compare::SNIFFER_PAIR) {
            let _ = writeln!(
                s,
                "- the host's ceiling for two threads: 2 × tcp-sniffer's wall ÷ tcp-sniffer-pair's \
                 (two one-worker runs at once, each over the whole file) = {:.2}× (context for the \
                 line above, not a target)",
                2.0 * sn / pair
            );
        }
        if let Some(rss) = fr
            .results
            .iter()
            .find(|t| t.tool == "tcp-sniffer")
            .and_then(|t| t.median)
        {
            let mib = rss.max_rss_kib as f64 / 1024.0;
            let _ = writeln!(
                s,
                "- tcp-sniffer peak RSS: {mib:.1} MiB (target ≤ 64 MiB) — {}",
                if mib <= 64.0 { "met" } else { "NOT met" }
            );
        }
    }
    for (tool, c) in fr
        .results
        .iter()
        .filter_map(|t| Some((&t.tool, t.check.as_ref()?)))
    {
        let _ = writeln!(
            s,
            "\nTruth check of {tool}: completeness **{:.3} %** ({} of {} expected, {} exact; {} emitted; {} expected incomplete).",
            c.completeness * 100.0,
            c.matched,
            c.expected,
            c.exact,
            c.emitted,
            c.expected_incomplete
        );
        if !c.mismatches.is_empty() {
            let _ = writeln!(s, "\n| mismatch | count |\n|---|---:|");
            for (k, v) in &c.mismatches {
                let _ = writeln!(s, "| {k} | {v} |");
            }
            let _ = writeln!(s, "\nFirst examples:\n");
            for e in c.examples.iter().take(8) {
                let _ = writeln!(s, "- `{e}`");
            }
        }
    }
    let _ = writeln!(s);
}

fn color(tool: &str) -> &'static str {
    match tool {
        "tcp-sniffer" => "#d62728",
        "tcp-sniffer-2w" => "#ff7f0e",
        "tcpdump" => "#7f7f7f",
        "tshark" => "#1f77b4",
        "tcpflow" => "#2ca02c",
        "httpry" => "#9467bd",
        _ => "#8c564b",
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One bar of [`bar_chart`].
pub struct Bar {
    /// Label left of the bar.
    pub label: String,
    /// Length.
    pub value: f64,
    /// Fill colour.
    pub color: &'static str,
}

/// A group of bars under one heading.
pub struct BarGroup {
    /// Heading.
    pub label: String,
    /// Bars, top to bottom.
    pub bars: Vec<Bar>,
}

/// A hand-made horizontal bar chart: a title, then each group's heading and bars, one scale
/// for all. Each bar's value is written after it (`unit` appended).
pub fn bar_chart(title: &str, unit: &str, groups: &[BarGroup]) -> String {
    let (label_w, chart_w, bar_h, gap, top) = (170.0, 560.0, 18.0, 4.0, 50.0);
    let max = groups
        .iter()
        .flat_map(|g| g.bars.iter().map(|b| b.value))
        .fold(0.0f64, f64::max)
        .max(1.0);
    let rows: f64 = groups.iter().map(|g| 1.5 + g.bars.len() as f64).sum();
    let height = top + rows * (bar_h + gap) + 40.0;
    let width = label_w + chart_w + 120.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="22" font-size="15" font-weight="bold">{}</text>"#,
        esc(title)
    );
    let mut y = top;
    for g in groups {
        let _ = writeln!(
            s,
            r#"<text x="10" y="{:.1}" font-weight="bold">{}</text>"#,
            y + bar_h * 0.8,
            esc(&g.label)
        );
        y += (bar_h + gap) * 1.2;
        for b in &g.bars {
            let v = b.value;
            let w = (v / max * chart_w).max(1.0);
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                label_w - 8.0,
                y + bar_h * 0.75,
                esc(&b.label)
            );
            let _ = writeln!(
                s,
                r#"<rect x="{label_w}" y="{y:.1}" width="{w:.1}" height="{bar_h}" fill="{}"><title>{}: {v:.1}{}</title></rect>"#,
                b.color,
                esc(&b.label),
                esc(unit)
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}">{v:.1}</text>"#,
                label_w + w + 5.0,
                y + bar_h * 0.75
            );
            y += bar_h + gap;
        }
        y += (bar_h + gap) * 0.3;
    }
    let _ = writeln!(
        s,
        r#"<line x1="{label_w}" y1="{top}" x2="{label_w}" y2="{y:.1}" stroke="black"/>"#
    );
    let _ = writeln!(s, "</svg>");
    s
}

/// A horizontal bar chart of MB/s: one group per file (workload), one bar per tool that ran.
pub fn svg(r: &Report) -> String {
    let groups: Vec<BarGroup> = r
        .files
        .iter()
        .map(|f| BarGroup {
            label: format!(
                "{} — {} ({:.0} MB)",
                f.workload,
                f.file.rsplit('/').next().unwrap_or(&f.file),
                f.bytes as f64 / 1e6
            ),
            bars: f
                .results
                .iter()
                .filter_map(|t| {
                    t.mb_per_s.map(|v| Bar {
                        label: t.tool.clone(),
                        value: v,
                        color: color(&t.tool),
                    })
                })
                .collect(),
        })
        .collect();
    bar_chart(
        &format!(
            "Throughput reading the same pcap (MB/s, median of {} runs; longer is faster)",
            r.runs
        ),
        " MB/s",
        &groups,
    )
}
