// Type-check Grafana dashboards against Grafana's own schema, as published in @grafana/schema
// (TypeScript types generated from Grafana's CUE kinds): each dashboard `satisfies` the
// Dashboard kind, and each panel's `options` and `fieldConfig.defaults.custom` satisfy the
// panel plugin's Options and FieldConfig (panelcfg). Object literals are checked strictly:
// a misspelt or unknown field, a wrong type or a value outside an enum is an error.
// Usage: node check-dashboards.mjs FILE...   Output, JSON on stdout:
//   {typescript, schema, checked: [{file, panels}], errors: [{file, where, message}]}
// Used by tests/unit/test_grafana_schema.py; installed by scripts/setup (npm ci here).
import { readFileSync, mkdirSync, mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import ts from "typescript";

const require = createRequire(import.meta.url);
const schemaVersion = require("@grafana/schema/package.json").version;
const PANELCFG = {  // panel type -> the panelcfg module of @grafana/schema
  timeseries: "TimeSeries", stat: "Stat", bargauge: "BarGauge", gauge: "Gauge", table: "Table",
  text: "Text", piechart: "PieChart", heatmap: "Heatmap", histogram: "Histogram",
  barchart: "BarChart", statetimeline: "StateTimeline", statushistory: "StatusHistory",
  logs: "Logs", dashlist: "DashboardList", news: "News", xychart: "XYChart",
};
const base = "@grafana/schema/dist/esm/raw";
// Grafana's enums are TypeScript enums, which a JSON string never is: compare with their values.
// Fields with a default in the CUE schema are required in its TypeScript; Grafana fills them
// in when it loads a dashboard, so every field is optional here (tests/unit/test_grafana_schema.py
// asserts the few that have no default).
const lines = [
  "type Loose<T> = T extends string ? `${T}` : T extends number | boolean | null | undefined ? T",
  "  : T extends ReadonlyArray<infer U> ? Array<Loose<U>> : T extends object ? { [K in keyof T]?: Loose<T[K]> } : T;",
  `import type { Dashboard, Panel, RowPanel, VariableModel } from "${base}/dashboard/x/Dashboard_types.gen";`,
];
for (const [type, name] of Object.entries(PANELCFG)) {
  const dir = type === "dashlist" ? "dashboardlist" : type;
  lines.push(`import type * as ${type} from "${base}/composable/${dir}/panelcfg/x/${name}PanelCfg_types.gen";`);
}
const where = [];  // line number (0-based) -> {file, where}
const checked = [];
const errors = [];
// A value as TypeScript source, one line per member, each line remembering its JSON path.
const emit = (prefix, value, suffix, file, place) => {
  const out = [];
  const walk = (v, path, lead, tail, depth) => {
    const pad = " ".repeat(depth);
    if (v !== null && typeof v === "object" && Object.keys(v).length > 0) {
      const array = Array.isArray(v);
      out.push([`${pad}${lead}${array ? "[" : "{"}`, path]);
      const keys = Object.keys(v);
      keys.forEach((k, i) => {
        const comma = i < keys.length - 1 ? "," : "";
        walk(v[k], array ? `${path}[${k}]` : `${path}.${k}`, array ? "" : `${JSON.stringify(k)}: `,
             comma, depth + 1);
      });
      out.push([`${pad}${array ? "]" : "}"}${tail}`, path]);
    } else {
      out.push([`${pad}${lead}${JSON.stringify(v)}${tail}`, path]);
    }
  };
  walk(value, place, prefix, suffix, 0);
  for (const [line, path] of out) { where[lines.length] = { file, where: path }; lines.push(line); }
};
// One `satisfies` per element: TypeScript reports the first problem of an expression, so the
// dashboard's own fields, each variable, each panel and each panel's options are checked
// apart, and a problem in one cannot hide another's.
process.argv.slice(2).forEach((file, index) => {
  const dashboard = JSON.parse(readFileSync(file, "utf8"));
  const { panels: allPanels = [], templating = {}, ...fields } = dashboard;
  const { list: variables = [], ...templatingRest } = templating;
  emit(`export const dashboard${index} = `, { ...fields, templating: templatingRest, panels: [] },
       " satisfies Loose<Dashboard>;", file, "");
  variables.forEach((variable, i) => {
    emit(`export const variable${index}_${i} = `, variable, " satisfies Loose<VariableModel>;",
         file, `.templating.list[${i}]`);
  });
  let panels = 0;
  const visit = (panel, path) => {
    panels += 1;
    const type = panel.type;
    const id = `${index}_${panels}`;
    if (type === "row") {
      const { panels: inner = [], ...row } = panel;
      emit(`export const row${id} = `, row, " satisfies Loose<RowPanel>;", file, path);
      inner.forEach((p, i) => visit(p, `${path}.panels[${i}]`));
      return;
    }
    emit(`export const panel${id} = `, panel, " satisfies Loose<Panel>;", file, path);
    if (!(type in PANELCFG)) {
      errors.push({ file, where: path, message: `panel type ${JSON.stringify(type)} has no panelcfg schema here` });
      return;
    }
    const place = `${path} (${type} "${panel.title ?? ""}")`;
    emit(`export const options${id} = `, panel.options ?? {}, ` satisfies Loose<${type}.Options>;`,
         file, `${place}.options`);
    const custom = panel.fieldConfig?.defaults?.custom;
    if (custom !== undefined) {
      emit(`export const custom${id} = `, custom, ` satisfies Loose<${type}.FieldConfig>;`,
           file, `${place}.fieldConfig.defaults.custom`);
    }
  };
  allPanels.forEach((p, i) => visit(p, `.panels[${i}]`));
  checked.push({ file, panels });
});

// Inside node_modules, so that the imports resolve through @grafana/schema's exports map.
const cache = join(import.meta.dirname, "node_modules", ".slamon-check");
mkdirSync(cache, { recursive: true });
const dir = mkdtempSync(join(cache, "dashboards-"));
const source = join(dir, "dashboards.ts");
writeFileSync(source, lines.join("\n"));
const program = ts.createProgram([source], {
  strict: true, noEmit: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler, skipLibCheck: true, types: [],
});
for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
  const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n");
  if (diagnostic.file && diagnostic.file.fileName === source.replaceAll("\\", "/")) {
    const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start ?? 0);
    const place = where[line] ?? { file: "?", where: "imports" };
    errors.push({ file: place.file, where: place.where, message });
  } else {
    errors.push({ file: diagnostic.file?.fileName ?? "?", where: "schema", message });
  }
}
rmSync(dir, { recursive: true, force: true });
process.stdout.write(JSON.stringify({ typescript: ts.version, schema: schemaVersion, checked, errors }));
