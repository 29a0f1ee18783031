import { describe, expectTypeOf, it } from "vitest";
import type { JsonAnswer, JsonRequest, MaskEditRequest, ProjectDetail, SaveResult, Task, User } from "./types";
import type { JobRead, MemberRead } from "../dashboard/api";

// Checked by `tsc --noEmit` (npm run build): a path helper that resolved to `never` would
// make every client call type-check against anything.
describe("path types", () => {
  it("give each route's JSON answer", () => {
    expectTypeOf<JsonAnswer<"/api/v1/users/me", "get">>().toEqualTypeOf<User>();
    expectTypeOf<JsonAnswer<"/api/v1/projects/{project_id}", "get">>().toEqualTypeOf<ProjectDetail>();
    expectTypeOf<JsonAnswer<"/api/v1/projects/{project_id}/tasks/next", "post">>().toEqualTypeOf<Task>();
    expectTypeOf<JsonAnswer<"/api/v1/projects/{project_id}/members", "get">>().toEqualTypeOf<MemberRead[]>();
    // 201 and 202 answers
    expectTypeOf<JsonAnswer<"/api/v1/projects/{project_id}/members", "post">>().toEqualTypeOf<MemberRead>();
    expectTypeOf<JsonAnswer<"/api/v1/projects/{project_id}/jobs/{job_id}/retry", "post">>().toEqualTypeOf<JobRead>();
    expectTypeOf<JsonAnswer<"/api/v1/projects/{project_id}/images/{image_id}/mask", "patch">>().toEqualTypeOf<SaveResult>();
  });

  it("give a route's JSON request body", () => {
    expectTypeOf<JsonRequest<"/api/v1/projects/{project_id}/images/{image_id}/mask", "patch">>().toEqualTypeOf<MaskEditRequest>();
  });
});
