/** One scenario's ratios to its reference, for the chart. */
export interface ChartItem {
  readonly name: string;
  /** Service throughput / reference throughput. */
  readonly throughput: number;
  /** Service p99 / reference p99. */
  readonly p99: number;
  readonly target?: { throughput?: number; p99?: number };
}

const escape = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;");

/**
 * Two panels of horizontal bars, one row per scenario: throughput and p99
 * latency as a ratio to the no-op reference (1 = as fast as doing nothing),
 * with each target marked. Plain SVG, no dependencies.
 */
export function renderChart(items: readonly ChartItem[]): string {
  const rowHeight = 26;
  const labelWidth = 230;
  const panelWidth = 300;
  const top = 46;
  const height = top + items.length * rowHeight + 30;
  const width = labelWidth + 2 * panelWidth + 60;
  const panels = [
    { key: "throughput" as const, title: "throughput ÷ reference (higher is better)", max: 1.2, x: labelWidth, color: "#3b73b9" },
    { key: "p99" as const, title: "p99 latency ÷ reference (lower is better)", max: 5, x: labelWidth + panelWidth + 40, color: "#d9822b" },
  ];
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
  ];
  for (const panel of panels) {
    const scale = (value: number) => panel.x + (Math.min(value, panel.max) / panel.max) * (panelWidth - 20);
    out.push(`<text x="${panel.x}" y="18" font-weight="bold">${escape(panel.title)}</text>`);
    for (const tick of panel.key === "throughput" ? [0, 0.25, 0.5, 0.75, 1] : [0, 1, 2, 3, 4, 5]) {
      const x = scale(tick);
      out.push(`<line x1="${x}" y1="${top - 8}" x2="${x}" y2="${height - 26}" stroke="${tick === 1 ? "#555" : "#ddd"}"/>`);
      out.push(`<text x="${x}" y="${height - 12}" text-anchor="middle" fill="#555">${tick}</text>`);
    }
    items.forEach((item, i) => {
      const y = top + i * rowHeight;
      const value = item[panel.key];
      out.push(`<rect x="${panel.x}" y="${y}" width="${Math.max(0, scale(value) - panel.x)}" height="${rowHeight - 8}" fill="${panel.color}"/>`);
      out.push(`<text x="${scale(value) + 4}" y="${y + rowHeight / 2}" fill="#222">${value.toFixed(2)}</text>`);
      const target = item.target?.[panel.key];
      if (target !== undefined) {
        const x = scale(target);
        out.push(`<line x1="${x}" y1="${y - 2}" x2="${x}" y2="${y + rowHeight - 6}" stroke="#c00" stroke-width="2"><title>target ${target}</title></line>`);
      }
    });
  }
  items.forEach((item, i) => {
    out.push(`<text x="${labelWidth - 8}" y="${top + i * rowHeight + rowHeight / 2}" text-anchor="end">${escape(item.name)}</text>`);
  });
  out.push(`<text x="${labelWidth}" y="34" fill="#c00">red marks: issue 7's targets</text>`);
  out.push("</svg>");
  return out.join("\n") + "\n";
}
