// Health charts with Chart.js 4, registering only the line chart parts (tree-shaking keeps the
// bundle small). Time runs on a linear axis in epoch milliseconds so no date adapter is needed.
// Chart.js sizes its canvas through the CSSOM (element.style), which a style-src CSP allows.
import { Chart, Filler, LinearScale, LineController, LineElement, PointElement, Tooltip } from 'chart.js';

Chart.register(LineController, LineElement, PointElement, LinearScale, Tooltip, Filler);

export interface Series {
  label: string;
  unit: string;
  points: { x: number; y: number }[];
  /** Fixed y range (percentages) or auto. */
  max?: number;
  colour: string;
  /** The period shown (epoch ms): the whole period, so an offline gap stays visible. */
  from?: number;
  to?: number;
}

const HOUR = 3_600_000;
/** Tick spacing that lands on whole hours: 4 h for a day, 12 h for 3 days, a day for a week. */
const stepFor = (spanMs: number) =>
  spanMs <= 26 * HOUR ? 4 * HOUR : spanMs <= 80 * HOUR ? 12 * HOUR : 24 * HOUR;

const timeTick = (ms: number, spanMs: number): string => {
  const d = new Date(ms);
  return spanMs > 36 * HOUR
    ? d.toLocaleDateString(undefined, { weekday: 'short', day: 'numeric' })
    : d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
};

/** Draw one series into the canvas; returns the chart so the page can destroy it on navigation. */
export function lineChart(canvas: HTMLCanvasElement, s: Series): Chart {
  const xs = s.points.map((p) => p.x);
  const min = s.from ?? xs[0] ?? 0;
  const max = s.to ?? xs[xs.length - 1] ?? 0;
  const span = max - min;
  return new Chart(canvas, {
    type: 'line',
    data: {
      datasets: [
        {
          label: s.label,
          data: s.points,
          borderColor: s.colour,
          backgroundColor: `${s.colour}22`,
          fill: true,
          borderWidth: 2,
          pointRadius: s.points.length > 60 ? 0 : 2,
          tension: 0.2,
        },
      ],
    },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      parsing: false,
      normalized: true,
      interaction: { mode: 'nearest', intersect: false, axis: 'x' },
      plugins: {
        tooltip: {
          callbacks: {
            title: (items) => (items[0] ? new Date(items[0].parsed.x ?? 0).toLocaleString() : ''),
            label: (item) => `${s.label}: ${(item.parsed.y ?? 0).toFixed(1)} ${s.unit}`,
          },
        },
      },
      scales: {
        x: {
          type: 'linear',
          min,
          max,
          ticks: {
            color: '#4b5563',
            stepSize: stepFor(span),
            maxRotation: 0,
            callback: (v) => timeTick(Number(v), span),
          },
          grid: { color: '#e5e7eb' },
        },
        y: {
          type: 'linear',
          min: 0,
          ...(s.max !== undefined ? { max: s.max } : {}),
          ticks: { color: '#4b5563', callback: (v) => `${v}${s.unit === '%' ? '%' : ''}` },
          grid: { color: '#e5e7eb' },
        },
      },
    },
  });
}
