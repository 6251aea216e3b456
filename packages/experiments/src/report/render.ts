// Browser-safe part of the report, as the package entry exports it: the results types, the HTML
// report, the terminal table, the CSV, and the SVG charts the report draws (a page can draw its
// own live charts with them). File writing is in ./write.ts; the building blocks (table columns,
// formatting, ticks, colour maps) stay internal to their modules.
export type * from "./types.js";
export { renderReportHtml } from "./html.js";
export { formatFindingsTable, formatResultsTable, resultsToCsv } from "./table.js";
export { type HeatmapSpec, heatmap, type LineChartSpec, lineChart, PALETTE, type ScatterSpec, scatterChart } from "./svg.js";
