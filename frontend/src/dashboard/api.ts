/**
 * The lead dashboard's part of the REST API (`/api/v1/projects/{p}/dashboard` and the lead
 * actions it offers). The types are aliases into the generated api/schema.d.ts (see
 * api/types.ts), named as the dashboard's modules use them.
 */
import { API, request } from "../api/client";
import type { JsonAnswer, JsonRequest, LabelClass, ProjectDetail, ProjectSettingsUpdate, Role } from "../api/types";
import type { components } from "../api/schema";

type Schemas = components["schemas"];

export type WarningLevel = Schemas["Budget"]["level"];
export type RoundStatus = Schemas["RoundStatus"];
export type JobStatus = Schemas["JobStatus"];
export type BudgetLine = Schemas["BudgetLine"];
export type Budget = Schemas["Budget"];
export type CurvePoint = Schemas["CurvePoint"];
export type Projection = Schemas["Projection"];
export type SimulatedPoint = Schemas["SimulatedPoint"];
export type SimulatedCurve = Schemas["SimulatedCurve"];
export type LearningCurve = Schemas["LearningCurve"];
export type RoundRow = Schemas["RoundRow"];
export type ClassShare = Schemas["ClassShare"];
export type ClassBalance = Schemas["ClassBalance"];
export type TeamMember = Schemas["TeamMember"];
export type JobRead = Schemas["JobRead"];
export type CurrentRound = Schemas["CurrentRound"];
export type Jobs = Schemas["Jobs"];
export type Dashboard = Schemas["Dashboard"];
export type SimulationRead = Schemas["SimulationRead"];
export type MemberRead = Schemas["MemberRead"];
export type UploadReport = Schemas["UploadReport"];

async function json<T>(path: string, options: Parameters<typeof request>[1] = {}): Promise<T> {
  return (await (await request(path, options)).json()) as T;
}

const base = (projectId: number): string => `${API}/projects/${projectId}`;

export const dashboardApi = {
  dashboard(projectId: number): Promise<Dashboard> {
    return json<JsonAnswer<"/api/v1/projects/{project_id}/dashboard", "get">>(`${base(projectId)}/dashboard`);
  },
  jobs(projectId: number): Promise<Jobs> {
    return json<JsonAnswer<"/api/v1/projects/{project_id}/dashboard/jobs", "get">>(`${base(projectId)}/dashboard/jobs`);
  },
  startRound(projectId: number): Promise<JsonAnswer<"/api/v1/projects/{project_id}/rounds", "post">> {
    return json(`${base(projectId)}/rounds`, { method: "POST" });
  },
  closeRound(projectId: number, roundId: number): Promise<JsonAnswer<"/api/v1/projects/{project_id}/rounds/{round_id}/close", "post">> {
    return json(`${base(projectId)}/rounds/${roundId}/close`, { method: "POST" });
  },
  oracle(projectId: number, roundId: number, mode: "exact" | "dominant"): Promise<JobRead> {
    return json<JsonAnswer<"/api/v1/projects/{project_id}/rounds/{round_id}/oracle", "post">>(`${base(projectId)}/rounds/${roundId}/oracle`, { method: "POST", json: { mode } satisfies JsonRequest<"/api/v1/projects/{project_id}/rounds/{round_id}/oracle", "post"> });
  },
  retryJob(projectId: number, jobId: number): Promise<JobRead> {
    return json<JsonAnswer<"/api/v1/projects/{project_id}/jobs/{job_id}/retry", "post">>(`${base(projectId)}/jobs/${jobId}/retry`, { method: "POST" });
  },
  updateProject(projectId: number, changes: ProjectSettingsUpdate): Promise<ProjectDetail> {
    return json<JsonAnswer<"/api/v1/projects/{project_id}", "patch">>(base(projectId), { method: "PATCH", json: changes });
  },
  members(projectId: number): Promise<MemberRead[]> {
    return json<JsonAnswer<"/api/v1/projects/{project_id}/members", "get">>(`${base(projectId)}/members`);
  },
  addMember(projectId: number, email: string, role: Role): Promise<MemberRead> {
    return json<JsonAnswer<"/api/v1/projects/{project_id}/members", "post">>(`${base(projectId)}/members`, { method: "POST", json: { email, role } satisfies JsonRequest<"/api/v1/projects/{project_id}/members", "post"> });
  },
  setRole(projectId: number, userId: number, role: Role): Promise<MemberRead> {
    return json<JsonAnswer<"/api/v1/projects/{project_id}/members/{user_id}", "patch">>(`${base(projectId)}/members/${userId}`, { method: "PATCH", json: { role } satisfies JsonRequest<"/api/v1/projects/{project_id}/members/{user_id}", "patch"> });
  },
  async removeMember(projectId: number, userId: number): Promise<void> {
    await request(`${base(projectId)}/members/${userId}`, { method: "DELETE" });
  },
  addClass(projectId: number, name: string, colour: string): Promise<LabelClass> {
    return json<JsonAnswer<"/api/v1/projects/{project_id}/classes", "post">>(`${base(projectId)}/classes`, { method: "POST", json: { name, colour } satisfies JsonRequest<"/api/v1/projects/{project_id}/classes", "post"> });
  },
  updateClass(projectId: number, classId: number, changes: { name?: string; colour?: string }): Promise<LabelClass> {
    return json<JsonAnswer<"/api/v1/projects/{project_id}/classes/{class_id}", "patch">>(`${base(projectId)}/classes/${classId}`, { method: "PATCH", json: changes });
  },
  async deleteClass(projectId: number, classId: number): Promise<void> {
    await request(`${base(projectId)}/classes/${classId}`, { method: "DELETE" });
  },
  simulations(projectId: number): Promise<SimulationRead[]> {
    return json<JsonAnswer<"/api/v1/projects/{project_id}/dashboard/simulations", "get">>(`${base(projectId)}/dashboard/simulations`);
  },
  uploadSimulation(projectId: number, file: File): Promise<SimulationRead> {
    const form = new FormData();
    form.append("file", file);
    return json<JsonAnswer<"/api/v1/projects/{project_id}/dashboard/simulations", "post">>(`${base(projectId)}/dashboard/simulations`, { method: "POST", body: form });
  },
  async deleteSimulation(projectId: number, simulationId: number): Promise<void> {
    await request(`${base(projectId)}/dashboard/simulations/${simulationId}`, { method: "DELETE" });
  },
  exportUrl(projectId: number, format: "zip" | "coco"): string {
    return `${base(projectId)}/export?format=${format}`;
  },
};

/**
 * Uploads images (or zips) in one request with progress (fetch cannot report upload
 * progress; XMLHttpRequest can). Resolves with the server's report, rejects with its detail.
 */
export function uploadImages(
  projectId: number,
  files: readonly File[],
  split: string,
  onProgress: (fraction: number) => void,
): Promise<UploadReport> {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const file of files) form.append("files", file, file.name);
    form.append("split", split);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `${base(projectId)}/images`);
    xhr.withCredentials = true;
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      let body: unknown = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve(body as UploadReport);
      } else {
        const detail = (body as { detail?: unknown } | null)?.detail;
        reject(new Error(typeof detail === "string" ? detail : `Upload failed: ${xhr.status} ${xhr.statusText}`));
      }
    });
    xhr.addEventListener("error", () => reject(new Error("The server could not be reached.")));
    xhr.send(form);
  });
}
