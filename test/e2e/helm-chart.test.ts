// The Helm chart (docker/helm/gatehouse) rendered without helm and checked against the Kubernetes
// API schemas; see test/support/helm.ts for how, and what that does and does not prove.
import { describe, expect, test } from "vitest";
import { type KubeObject, renderChart, schemaErrors, unknownFieldErrors } from "../support/helm.js";

const find = (objs: KubeObject[], kind: string, name: string) => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o)
    throw new Error(`no ${kind} ${name} in ${objs.map((x) => `${x.kind}/${x.metadata.name}`).join(", ")}`);
  return o;
};
const container = (o: KubeObject) => o.spec.template.spec.containers[0];
/** Every Deployment's pods carry its selector's labels, and every Service selects some pods. */
function expectSelectorsMatch(objs: KubeObject[]) {
  const pods = objs.filter((o) => o.kind === "Deployment");
  for (const d of pods) expect(d.spec.template.metadata.labels).toMatchObject(d.spec.selector.matchLabels);
  for (const svc of objs.filter((o) => o.kind === "Service")) {
    expect(
      pods.filter((d) =>
        Object.entries(svc.spec.selector).every(([k, v]) => d.spec.template.metadata.labels[k] === v),
      ),
    ).toHaveLength(1);
  }
}
const envNames = (o: KubeObject) => container(o).env.map((e: { name: string }) => e.name);

describe("helm chart", () => {
  test("default values: API, workers, gateway nodes (HPA, PDB) and the console, valid Kubernetes objects", async () => {
    const objs = await renderChart();
    expect(objs.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
      "Deployment/gatehouse-api",
      "Deployment/gatehouse-gateway",
      "Deployment/gatehouse-web",
      "Deployment/gatehouse-worker",
      "HorizontalPodAutoscaler/gatehouse-gateway",
      "PodDisruptionBudget/gatehouse-gateway",
      "Service/gatehouse-api",
      "Service/gatehouse-gateway",
      "Service/gatehouse-web",
    ]);
    expect(await schemaErrors(objs)).toEqual([]);
    expect(await unknownFieldErrors(objs)).toEqual([]);
    expectSelectorsMatch(objs);

    for (const role of ["api", "gateway"]) {
      const c = container(find(objs, "Deployment", `gatehouse-${role}`));
      expect(c.livenessProbe.httpGet.path).toBe("/healthz");
      expect(c.readinessProbe.httpGet.path).toBe("/readyz");
    }
    expect(container(find(objs, "Deployment", "gatehouse-worker")).livenessProbe.httpGet.path).toBe(
      "/healthz",
    );

    // Postgres and Redis are external: their URLs (and the secrets) come from the Secret, never inline.
    for (const role of ["api", "worker", "gateway"]) {
      const env = container(find(objs, "Deployment", `gatehouse-${role}`)).env as Array<{
        name: string;
        value?: string;
        valueFrom?: { secretKeyRef: { name: string; key: string } };
      }>;
      for (const key of ["DATABASE_URL", "REDIS_URL", "SECRETS_KEY"]) {
        expect(env.find((e) => e.name === key)?.valueFrom?.secretKeyRef).toEqual({ name: "gatehouse", key });
      }
    }
    expect(envNames(find(objs, "Deployment", "gatehouse-api"))).toContain("ADMIN_TOKEN");
    expect(envNames(find(objs, "Deployment", "gatehouse-gateway"))).not.toContain("ADMIN_TOKEN");

    const hpa = find(objs, "HorizontalPodAutoscaler", "gatehouse-gateway");
    expect(hpa.spec.scaleTargetRef).toEqual({
      apiVersion: "apps/v1",
      kind: "Deployment",
      name: "gatehouse-gateway",
    });
    expect(hpa.spec.metrics).toEqual([
      {
        type: "Resource",
        resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 70 } },
      },
    ]);
    expect(find(objs, "Deployment", "gatehouse-gateway").spec.replicas).toBeUndefined(); // the HPA owns it
    const pdb = find(objs, "PodDisruptionBudget", "gatehouse-gateway");
    expect(pdb.spec).toEqual({
      maxUnavailable: 1,
      selector: { matchLabels: find(objs, "Deployment", "gatehouse-gateway").spec.selector.matchLabels },
    });
    expect(container(find(objs, "Deployment", "gatehouse-web")).env).toContainEqual({
      name: "API_URL",
      value: "http://gatehouse-api:4000",
    });
  });

  test("values switch the console off, autoscale on sessions too, and reach every container", async () => {
    const objs = await renderChart(
      {
        web: { enabled: false },
        gateway: { autoscaling: { sessions: { enabled: true, averageValue: 300 } } },
        existingSecret: "gh-prod",
        env: { LOG_LEVEL: "debug", GATEWAY_MAX_SESSIONS_PER_PRINCIPAL: 20 },
        podAnnotations: { "prometheus.io/scrape": "true" },
        image: { repository: "registry.example/gatehouse", tag: "1.2.3", pullSecrets: ["regcred"] },
      },
      { name: "gh", namespace: "mcp" },
    );
    expect(objs.some((o) => o.metadata.name.endsWith("-web"))).toBe(false);
    expect(await schemaErrors(objs)).toEqual([]);
    expect(await unknownFieldErrors(objs)).toEqual([]);
    expectSelectorsMatch(objs);
    const hpa = find(objs, "HorizontalPodAutoscaler", "gh-gateway");
    expect(hpa.spec.metrics[1]).toEqual({
      type: "Pods",
      pods: {
        metric: { name: "gatehouse_gateway_sessions" },
        target: { type: "AverageValue", averageValue: "300" },
      },
    });
    const gw = find(objs, "Deployment", "gh-gateway");
    expect(container(gw).image).toBe("registry.example/gatehouse:1.2.3");
    expect(gw.spec.template.spec.imagePullSecrets).toEqual([{ name: "regcred" }]);
    expect(gw.spec.template.metadata.annotations).toEqual({ "prometheus.io/scrape": "true" });
    expect(container(gw).env).toContainEqual({ name: "GATEWAY_MAX_SESSIONS_PER_PRINCIPAL", value: "20" });
    expect(
      container(gw).env.find((e: { name: string }) => e.name === "REDIS_URL").valueFrom.secretKeyRef.name,
    ).toBe("gh-prod");
  });

  test("the checks catch a broken chart: a value of the wrong type, a misspelt field, a value not in values.yaml", async () => {
    const wrongType = await renderChart({ api: { replicas: "two" } });
    expect((await schemaErrors(wrongType)).join("\n")).toMatch(
      /Deployment\/gatehouse-api: .*replicas must be integer/,
    );

    const misspelt = await renderChart();
    container(find(misspelt, "Deployment", "gatehouse-api")).readinessProbe.httpGett = { path: "/readyz" };
    expect(await schemaErrors(misspelt)).toEqual([]); // the API schemas allow unknown fields…
    expect((await unknownFieldErrors(misspelt)).join("\n")).toMatch(/Deployment\/gatehouse-api: .*httpGett/); // …the types do not

    await expect(renderChart({ gateway: { autoscaling: { sessions: "yes" } } })).rejects.toThrow(
      /templates\/gateway\.yaml/,
    );
  });
});
