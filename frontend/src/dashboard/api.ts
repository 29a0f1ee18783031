/**
 * The lead dashboard's part of the REST API (`/api/v1/projects/{p}/dashboard` and the lead
 * actions it offers), typed by hand from backend/dashboard/schemas.py and checked against the
 * OpenAPI schema by tests/e2e/test_dashboard_api_types.py.
 */
import { API, request } from "../api/client";
import type { LabelClass, ProjectDetail, ProjectSettings, Role } from "../api/types";

export type WarningLevel = "none" | "ok" | "warning" | "critical" | "exhausted";
export type RoundStatus =
  | "pending"
  | "training"
  | "scoring"
  | "querying"
  | "labeling"
  | "complete"
  | "failed";
export type JobStatus = "queued" | "running" | "succeeded" | "failed" | "cancelled";

export interface BudgetLine {
  unit: "pixels" | "superpixels" | "images" | "hours";
  set: number | null;
  spent: number;
  remaining: number | null;
  fraction_spent: number | null;
  equivalent: boolean;
}

export interface Budget {
  lines: BudgetLine[];
  level: WarningLevel;
  warn_at: number;
  critical_at: number;
  pool_images: number;
  pool_pixels: number;
  mean_superpixel_pixels: number | null;
  note: string;
}

export interface CurvePoint {
  round_number: number;
  model_id: number;
  labeled_pixels: number;
  labeled_fraction: number;
  miou: number;
}

export interface Projection {
  method: string;
  a: number;
  b: number;
  at_pixels: number;
  miou: number;
  points_used: number;
}

export interface SimulatedPoint {
  round: number;
  labeled_fraction: number;
  labeled_pixels: number;
  miou_mean: number;
  miou_sd: number;
  seeds: number;
}

export interface SimulatedCurve {
  simulation_id: number;
  simulation_name: string;
  strategy: string;
  points: SimulatedPoint[];
}

export interface LearningCurve {
  points: CurvePoint[];
  projection: Projection | null;
  simulated: SimulatedCurve[];
  pool_pixels: number;
}

export interface RoundRow {
  id: number;
  number: number;
  strategy: string;
  status: RoundStatus;
  created_at: string;
  finished_at: string | null;
  images_queried: number;
  superpixels_queried: number;
  superpixels_per_image: number[];
  queries_done: number;
  labeled_pixels: number;
  labeled_superpixels: number;
  seconds: number;
  model_id: number | null;
  miou: number | null;
  per_class_iou: (number | null)[] | null;
  model_kind: string | null;
  iterations: number | null;
  max_iterations: number | null;
  stopped_early: boolean | null;
}

export interface ClassShare {
  index: number;
  name: string;
  colour: string;
  labeled_pixels: number;
  labeled_share: number;
  validation_pixels: number;
  validation_share: number;
  starved: boolean;
}

export interface ClassBalance {
  classes: ClassShare[];
  labeled_pixels: number;
  validation_pixels: number;
  validation_images: number;
  rule: string;
}

export interface TeamMember {
  user_id: number;
  email: string;
  name: string;
  role: string | null;
  submissions: number;
  superpixels: number;
  pixels: number;
  hours: number;
  superpixels_per_hour: number | null;
  pixels_per_hour: number | null;
  conflicts: number;
  conflict_share: number;
}

export interface JobRead {
  id: number;
  project_id: number | null;
  round_id: number | null;
  kind: string;
  status: JobStatus;
  progress: number;
  message: string;
  error: string | null;
  celery_task_id: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  eta_at: string | null;
  heartbeat_at: string | null;
  worker: string | null;
  takeovers: number;
}

export interface CurrentRound {
  id: number;
  number: number;
  status: RoundStatus;
  queries: number;
  queries_done: number;
}

export interface Jobs {
  jobs: JobRead[];
  current_round: CurrentRound | null;
  can_start_round: boolean;
  oracle_available: boolean;
}

export interface Dashboard {
  budget: Budget;
  learning_curve: LearningCurve;
  rounds: RoundRow[];
  class_balance: ClassBalance;
  team: TeamMember[];
  jobs: Jobs;
}

export interface SimulationRead {
  id: number;
  name: string;
  created_at: string;
  rows: number;
  strategies: string[];
}

export interface MemberRead {
  user_id: number;
  email: string;
  name: string;
  role: Role;
}

async function json<T>(path: string, options: Parameters<typeof request>[1] = {}): Promise<T> {
  return (await (await request(path, options)).json()) as T;
}

const base = (projectId: number): string => `${API}/projects/${projectId}`;

export const dashboardApi = {
  dashboard(projectId: number): Promise<Dashboard> {
    return json<Dashboard>(`${base(projectId)}/dashboard`);
  },
  jobs(projectId: number): Promise<Jobs> {
    return json<Jobs>(`${base(projectId)}/dashboard/jobs`);
  },
  startRound(projectId: number): Promise<unknown> {
    return json(`${base(projectId)}/rounds`, { method: "POST" });
  },
  closeRound(projectId: number, roundId: number): Promise<unknown> {
    return json(`${base(projectId)}/rounds/${roundId}/close`, { method: "POST" });
  },
  oracle(projectId: number, roundId: number, mode: "exact" | "dominant"): Promise<JobRead> {
    return json<JobRead>(`${base(projectId)}/rounds/${roundId}/oracle`, { method: "POST", json: { mode } });
  },
  retryJob(projectId: number, jobId: number): Promise<JobRead> {
    return json<JobRead>(`${base(projectId)}/jobs/${jobId}/retry`, { method: "POST" });
  },
  updateProject(projectId: number, changes: Partial<ProjectSettings> & { name?: string }): Promise<ProjectDetail> {
    return json<ProjectDetail>(base(projectId), { method: "PATCH", json: changes });
  },
  members(projectId: number): Promise<MemberRead[]> {
    return json<MemberRead[]>(`${base(projectId)}/members`);
  },
  addMember(projectId: number, email: string, role: Role): Promise<MemberRead> {
    return json<MemberRead>(`${base(projectId)}/members`, { method: "POST", json: { email, role } });
  },
  setRole(projectId: number, userId: number, role: Role): Promise<MemberRead> {
    return json<MemberRead>(`${base(projectId)}/members/${userId}`, { method: "PATCH", json: { role } });
  },
  async removeMember(projectId: number, userId: number): Promise<void> {
    await request(`${base(projectId)}/members/${userId}`, { method: "DELETE" });
  },
  addClass(projectId: number, name: string, colour: string): Promise<LabelClass> {
    return json<LabelClass>(`${base(projectId)}/classes`, { method: "POST", json: { name, colour } });
  },
  updateClass(projectId: number, classId: number, changes: { name?: string; colour?: string }): Promise<LabelClass> {
    return json<LabelClass>(`${base(projectId)}/classes/${classId}`, { method: "PATCH", json: changes });
  },
  async deleteClass(projectId: number, classId: number): Promise<void> {
    await request(`${base(projectId)}/classes/${classId}`, { method: "DELETE" });
  },
  simulations(projectId: number): Promise<SimulationRead[]> {
    return json<SimulationRead[]>(`${base(projectId)}/dashboard/simulations`);
  },
  uploadSimulation(projectId: number, file: File): Promise<SimulationRead> {
    const form = new FormData();
    form.append("file", file);
    return json<SimulationRead>(`${base(projectId)}/dashboard/simulations`, { method: "POST", body: form });
  },
  async deleteSimulation(projectId: number, simulationId: number): Promise<void> {
    await request(`${base(projectId)}/dashboard/simulations/${simulationId}`, { method: "DELETE" });
  },
  exportUrl(projectId: number, format: "zip" | "coco"): string {
    return `${base(projectId)}/export?format=${format}`;
  },
};

export interface UploadReport {
  created: { id: number }[];
  duplicates: unknown[];
}

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
