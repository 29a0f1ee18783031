/**
 * The parts of the REST API (/api/v1) the browser uses, under the front end's names. Each is
 * an alias into schema.d.ts, which openapi-typescript generates from the API's OpenAPI
 * document (`.venv/bin/python scripts/api_types.py`; tests/backend/test_api_types.py fails
 * when the checked-in copy is stale), so a backend schema change reaches `tsc`.
 */
import type { components, paths } from "./schema";

type Schemas = components["schemas"];

export type Role = Schemas["Role"];
export type User = Schemas["UserRead"];
export type LabelClass = Schemas["ClassRead"];
export type Project = Schemas["ProjectRead"];
export type ProjectDetail = Schemas["ProjectDetail"];
/** The body of PATCH /projects/{id}: fields left out keep their value. */
export type ProjectSettingsUpdate = Schemas["ProjectSettingsUpdate"];
export type TaskLinks = Schemas["TaskLinks"];
export type Task = Schemas["Task"];
/**
 * The body of PATCH .../mask: an edit of the version sent as If-Match (annotator/edit.ts).
 * `fills` are [superpixel id, class]; `runs` are [offset, length, class], row-major offsets,
 * sorted, not overlapping.
 */
export type MaskEditRequest = Schemas["MaskEditBody"];
export type SaveResult = Schemas["SaveResult"];

type Method = "get" | "put" | "post" | "patch" | "delete";

/**
 * The JSON body of a path's success answer (its lowest 2xx status with a JSON body), e.g.
 * `JsonAnswer<"/api/v1/projects/{project_id}", "get">`: a client method typed with it breaks
 * the build when the route's response model changes.
 */
export type JsonAnswer<P extends keyof paths, M extends Method> = paths[P][M] extends {
  responses: infer R;
}
  ? R extends { 200: { content: { "application/json": infer T } } }
    ? T
    : R extends { 201: { content: { "application/json": infer T } } }
      ? T
      : R extends { 202: { content: { "application/json": infer T } } }
        ? T
        : never
  : never;

/** The JSON request body of a path's method. */
export type JsonRequest<P extends keyof paths, M extends Method> = paths[P][M] extends {
  requestBody?: { content: { "application/json": infer T } };
}
  ? T
  : never;
