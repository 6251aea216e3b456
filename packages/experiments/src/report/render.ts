// Browser-safe entry of the report: everything except file writing (see ./write.ts).
export type * from "./types.js";
export { renderReportHtml, ablationGrids, NO_GRID_NOTE } from "./html.js";
export { resultsToCsv, formatResultsTable, TABLE_COLUMNS, type TableColumn } from "./table.js";
export { escapeHtml } from "./format.js";
export { PALETTE, niceTicks, lineChart, scatterChart, heatmap, viridis } from "./svg.js";
export { sampleResults } from "./sample.js";
