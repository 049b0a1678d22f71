// Fetches every GitHub endpoint sequin-mock imitates and checks each reply
// against the response schema GitHub's OpenAPI description gives for that
// path, method and status. One line per check; exit status 1 on any mismatch.
// Usage: node validate.js http://127.0.0.1:PORT   (deps resolved via NODE_PATH)

"use strict";

const spec = require("@octokit/openapi/generated/api.github.com.json");
const Ajv = require("ajv");
const addFormats = require("ajv-formats");

const base = process.argv[2];
const token = "ghp_openapi";
const repo = "octo/hello";
let failures = 0;

/// OpenAPI 3.0's `nullable: true` as JSON Schema: "null, or the schema".
/// (Ajv's own `nullable` refuses it beside `allOf` and keeps an `enum` from
/// admitting null, both of which GitHub's description relies on.)
function jsonSchema(node) {
  if (Array.isArray(node)) return node.map(jsonSchema);
  if (node === null || typeof node !== "object") return node;
  const out = {};
  for (const [key, value] of Object.entries(node)) {
    if (!(key === "nullable" && value === true)) out[key] = jsonSchema(value);
  }
  return node.nullable === true ? { anyOf: [{ type: "null" }, out] } : out;
}

// `example`, `x-*` and the like are not JSON Schema, hence strict off.
const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema({ $id: "github", components: jsonSchema(spec.components) });
const compiled = new Map();

/// `#/components/...` in an operation's schema means the description's own components.
function rebase(schema) {
  return JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"github#/components/'));
}

function resolve(ref) {
  return ref
    .slice(2)
    .split("/")
    .reduce((node, key) => node[key.replaceAll("~1", "/").replaceAll("~0", "~")], spec);
}

/// The validator for one operation's reply with this status: null when the
/// description declares the status without a JSON body; throws when it does
/// not declare the status at all.
function validatorFor(path, method, status) {
  const key = `${method} ${path} ${status}`;
  if (compiled.has(key)) return compiled.get(key);
  const operation = spec.paths[path] && spec.paths[path][method];
  if (!operation) throw new Error(`no operation ${method.toUpperCase()} ${path} in the description`);
  let response = operation.responses[String(status)];
  if (!response) throw new Error(`status ${status} is not one ${method.toUpperCase()} ${path} answers with`);
  if (response.$ref) response = resolve(response.$ref);
  const schema = response.content && response.content["application/json"] && response.content["application/json"].schema;
  const validate = schema ? ajv.compile(rebase(jsonSchema(schema))) : null;
  compiled.set(key, validate);
  return validate;
}

async function call(method, url, body, extraHeaders = {}) {
  const response = await fetch(base + url, {
    method,
    redirect: "manual",
    headers: {
      "User-Agent": "sequin-mock-openapi-check",
      Accept: "application/vnd.github+json",
      "X-GitHub-Api-Version": "2022-11-28",
      Authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { "Content-Type": "application/json" }),
      ...extraHeaders,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: text ? JSON.parse(text) : null };
}

async function admin(method, path, body) {
  const response = await fetch(`${base}/_admin/github/${path}${path.includes("?") ? "&" : "?"}account=${token}`, {
    method,
    headers: { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await response.json();
  if (!response.ok) throw new Error(`admin ${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

/// One check: call the mock, expect `status`, validate the body against the
/// operation `opPath` (the description's templated path).
async function check(method, url, opPath, status, body, headers) {
  const label = `${method} ${url} -> ${status}`;
  let reply;
  try {
    reply = await call(method, url, body, headers);
    if (reply.status !== status) throw new Error(`got ${reply.status}: ${reply.text.slice(0, 300)}`);
    const validate = validatorFor(opPath, method.toLowerCase(), status);
    if (validate && !validate(reply.json)) {
      throw new Error(ajv.errorsText(validate.errors, { separator: "; ", dataVar: "body" }));
    }
    if (!validate && reply.text !== "") throw new Error(`expected no body, got ${reply.text.slice(0, 200)}`);
    console.log(`ok   ${label}`);
  } catch (e) {
    failures += 1;
    console.log(`FAIL ${label}: ${e.message}`);
  }
  return reply;
}

const ISSUES = "/repos/{owner}/{repo}/issues";
const ISSUE = "/repos/{owner}/{repo}/issues/{issue_number}";
const ISSUE_COMMENTS = "/repos/{owner}/{repo}/issues/{issue_number}/comments";
const REPO_COMMENTS = "/repos/{owner}/{repo}/issues/comments";
const COMMENT = "/repos/{owner}/{repo}/issues/comments/{comment_id}";
const LABELS = "/repos/{owner}/{repo}/labels";
const LABEL = "/repos/{owner}/{repo}/labels/{name}";

/// Guards against a vacuous check (a schema that lets anything through).
function checkSchemasBite() {
  const validate = validatorFor(ISSUE, "get", 200);
  if (validate({ id: "1" })) {
    failures += 1;
    console.log("FAIL the issue schema accepts a body that is not an issue");
  } else {
    console.log("ok   the issue schema rejects a body that is not an issue");
  }
}

async function main() {
  checkSchemasBite();
  await admin("POST", "repos", { full_name: repo });
  await admin("POST", "repos", { full_name: "octo/other" });
  await admin("POST", "settings", { min_mutation_interval_ms: 0 });
  await admin("POST", "users", { login: "hubot" });
  const milestone = await admin("POST", `repos/${repo}/milestones`, { title: "v1" });
  await admin("POST", `repos/${repo}/seed`, { issues: 4, pull_requests: 2, step_s: 5 });
  await admin("POST", `repos/${repo}/issues/1/comments`, { body: "From outside", as: "hubot" });
  await admin("PATCH", `repos/${repo}/issues/2`, { state: "closed", as: "hubot" });
  await admin("DELETE", `repos/${repo}/issues/3`);
  await admin("POST", `repos/${repo}/issues/4/transfer`, { to: "octo/other" });

  const r = `/repos/${repo}`;
  await check("POST", `${r}/labels`, LABELS, 201, { name: "bug", color: "d73a4a", description: "Something is broken" });
  await check("POST", `${r}/labels`, LABELS, 422, { name: "Bug" });
  await check("GET", `${r}/labels?per_page=1`, LABELS, 200);
  await check("GET", `${r}/labels/bug`, LABEL, 200);
  await check("PATCH", `${r}/labels/bug`, LABEL, 200, { description: null });
  await check("POST", `${r}/labels`, LABELS, 201, { name: "doomed" });
  await check("DELETE", `${r}/labels/doomed`, LABEL, 204);
  await check("GET", `${r}/labels/doomed`, LABEL, 404);

  const created = await check("POST", `${r}/issues`, ISSUES, 201, {
    title: "Created",
    body: "With everything",
    labels: ["bug", "new-label"],
    assignees: ["hubot"],
    milestone: milestone.number,
  });
  const n = created && created.json ? created.json.number : 0;
  await check("POST", `${r}/issues`, ISSUES, 422, { body: "no title" });
  await check("POST", `${r}/issues`, ISSUES, 422, { title: "x", assignees: ["nobody"] });
  await check("GET", `${r}/issues?state=all&per_page=2`, ISSUES, 200);
  await check("GET", `${r}/issues?state=all&sort=updated&direction=asc&since=2020-01-01T00:00:00Z&per_page=100`, ISSUES, 200);
  await check("GET", `${r}/issues?state=closed`, ISSUES, 200);
  const one = await check("GET", `${r}/issues/${n}`, ISSUE, 200);
  await check("GET", `${r}/issues/6`, ISSUE, 200);
  await check("GET", `${r}/issues/${n}`, ISSUE, 304, undefined, { "If-None-Match": one.headers.get("etag") });
  await check("PATCH", `${r}/issues/${n}`, ISSUE, 200, { state: "closed", state_reason: "not_planned" });
  await check("PATCH", `${r}/issues/${n}`, ISSUE, 422, { state_reason: "later" });
  await check("PATCH", `${r}/issues/${n}`, ISSUE, 200, { state: "open", labels: [], assignees: [], milestone: null });
  await check("GET", `${r}/issues/999`, ISSUE, 404);
  await check("GET", `${r}/issues/3`, ISSUE, 410);
  await check("GET", `${r}/issues/4`, ISSUE, 301);

  const comment = await check("POST", `${r}/issues/1/comments`, ISSUE_COMMENTS, 201, { body: "Hello" });
  await check("POST", `${r}/issues/1/comments`, ISSUE_COMMENTS, 422, { body: "" });
  await check("GET", `${r}/issues/1/comments`, ISSUE_COMMENTS, 200);
  await check("GET", `${r}/issues/3/comments`, ISSUE_COMMENTS, 410);
  await check("GET", `${r}/issues/comments?sort=updated&direction=desc&per_page=1`, REPO_COMMENTS, 200);
  const id = comment && comment.json ? comment.json.id : 0;
  await check("GET", `${r}/issues/comments/${id}`, COMMENT, 200);
  await check("PATCH", `${r}/issues/comments/${id}`, COMMENT, 200, { body: "Edited" });
  await check("PATCH", `${r}/issues/comments/${id}`, COMMENT, 422, { body: "" });
  await check("DELETE", `${r}/issues/comments/${id}`, COMMENT, 204);
  await check("GET", `${r}/issues/comments/${id}`, COMMENT, 404);
  await check("GET", "/repos/octo/nowhere/issues", ISSUES, 404);

  console.log(failures === 0 ? "all replies match the OpenAPI description" : `${failures} check(s) failed`);
  process.exit(failures === 0 ? 0 : 1);
}

main().catch((e) => {
  console.log(`FAIL ${e.stack || e}`);
  process.exit(1);
});
