// Two small hand-drawn SVG charts for the admin funnel (no chart library: two bar charts do not need one).
// Every bar carries its number as text, so the chart reads without colour and a screen reader gets a table.

import { h } from "./dom";

const SVG = "http://www.w3.org/2000/svg";

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const element = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) element.setAttribute(key, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

export interface Stage {
  label: string;
  value: number;
}

/** Conversion of each stage from the one before it and from the first, in whole percent. */
export function conversions(stages: Stage[]): { fromPrevious: number | null; fromFirst: number | null }[] {
  return stages.map((stage, i) => {
    const first = stages[0]?.value ?? 0;
    const previous = i ? stages[i - 1].value : null;
    return {
      fromPrevious: previous === null ? null : previous ? Math.round((100 * stage.value) / previous) : 0,
      fromFirst: i === 0 ? null : first ? Math.round((100 * stage.value) / first) : 0,
    };
  });
}

/** Horizontal funnel bars: label, count and the conversion from the previous stage. */
export function funnelChart(stages: Stage[], title: string): HTMLElement {
  const rowHeight = 40;
  const width = 340;
  const max = Math.max(1, ...stages.map((s) => s.value));
  const rates = conversions(stages);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${rowHeight * stages.length}`, role: "img", "aria-label": title, class: "chart funnel-chart" });
  stages.forEach((stage, i) => {
    const y = i * rowHeight;
    const barWidth = Math.max(2, Math.round(((width - 4) * stage.value) / max));
    chart.append(svg("rect", { x: 0, y: y + 18, width: barWidth, height: 16, rx: 3, class: "bar" }));
    const rate = rates[i].fromPrevious;
    chart.append(svg("text", { x: 0, y: y + 13, class: "bar-label" }, `${stage.label}: ${stage.value}${rate === null ? "" : ` (${rate}%)`}`));
  });
  return h("figure", { class: "chart-box" }, chart as unknown as Node, h("figcaption", { class: "hint" }, title));
}

/** Vertical bars, one per day, with the count above each non-empty bar. */
export function barsChart(points: { label: string; value: number }[], title: string): HTMLElement {
  const height = 140;
  const width = 340;
  const slot = width / Math.max(1, points.length);
  const max = Math.max(1, ...points.map((p) => p.value));
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height + 18}`, role: "img", "aria-label": title, class: "chart bars-chart" });
  points.forEach((point, i) => {
    const barHeight = Math.round(((height - 16) * point.value) / max);
    const x = i * slot + slot * 0.15;
    chart.append(svg("rect", { x, y: height - barHeight, width: slot * 0.7, height: Math.max(barHeight, 1), rx: 2, class: "bar" }));
    if (point.value) chart.append(svg("text", { x: x + slot * 0.35, y: height - barHeight - 3, "text-anchor": "middle", class: "bar-value" }, String(point.value)));
  });
  const ends = points.length ? [points[0], points[points.length - 1]] : [];
  ends.forEach((point, i) => chart.append(svg("text", { x: i ? width : 0, y: height + 14, "text-anchor": i ? "end" : "start", class: "bar-label" }, point.label)));
  return h("figure", { class: "chart-box" }, chart as unknown as Node, h("figcaption", { class: "hint" }, title));
}
