// Validate Prometheus Operator objects (ServiceMonitor, PrometheusRule, ...) against the
// operator's API types, as published in @kubernetes-models/prometheus-operator (generated
// from the operator's Go types: field types, patterns such as durations, required fields).
// Input: a JSON array of objects on stdin. Output: a JSON array of
// {kind, name, error} on stdout (error null when valid). Exit 0 unless the input is bad.
// Used by tests/unit/test_helm_chart.py; installed by scripts/setup (npm ci here).
import * as v1 from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const objects = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const results = objects.map((object) => {
  const name = object?.metadata?.name ?? null;
  const Model = object?.apiVersion === "monitoring.coreos.com/v1" ? v1[object.kind] : undefined;
  if (typeof Model !== "function") {
    return { kind: object?.kind ?? null, name, error: `no model for ${object?.apiVersion} ${object?.kind}` };
  }
  try {
    new Model(object).validate();
    return { kind: object.kind, name, error: null };
  } catch (error) {
    return { kind: object.kind, name, error: String(error?.message ?? error) };
  }
});
process.stdout.write(JSON.stringify(results));
