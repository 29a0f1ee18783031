/**
 * A small typed client over fetch. The session is the HttpOnly cookie set at login, sent
 * automatically to the same origin. Errors become ApiError with the server's `detail`.
 */
import type { MaskEdit } from "../annotator/edit";
import { type Labels, type SuperpixelMap } from "../annotator/superpixels";
import { zlibDecompress } from "../annotator/png";
import { switchedOn } from "../shell/switches";
import type { JsonAnswer, MaskEditRequest, Project, ProjectDetail, SaveResult, Task, User } from "./types";

export const API = "/api/v1";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly response: Response | null = null,
  ) {
    super(detail);
    this.name = "ApiError";
  }
}

/** Listeners told when the server says the session is gone (401). */
const unauthorizedListeners = new Set<() => void>();

export function onUnauthorized(listener: () => void): () => void {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

async function errorFrom(response: Response): Promise<ApiError> {
  let detail = `${response.status} ${response.statusText}`;
  try {
    const body = (await response.json()) as { detail?: unknown };
    if (typeof body.detail === "string") detail = body.detail;
    else if (Array.isArray(body.detail)) {
      detail = body.detail
        .map((item: { msg?: string; loc?: unknown[] }) => `${(item.loc ?? []).join(".")}: ${item.msg ?? ""}`)
        .join("; ");
    }
  } catch {
    // Not JSON: keep the status line.
  }
  return new ApiError(response.status, detail, response);
}

export interface RequestOptions {
  method?: string;
  json?: unknown;
  body?: BodyInit;
  headers?: Record<string, string>;
  /** Statuses returned to the caller instead of thrown. */
  accept?: number[];
}

export async function request(path: string, options: RequestOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { ...options.headers };
  let body = options.body;
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.json);
  }
  const url = path.startsWith("/") ? path : `${API}/${path}`;
  let response: Response;
  try {
    response = await fetch(url, {
      method: options.method ?? "GET",
      headers,
      credentials: "same-origin",
      ...(body === undefined ? {} : { body }),
    });
  } catch (error) {
    throw new ApiError(0, `The server could not be reached (${String(error)}).`);
  }
  if (response.ok || options.accept?.includes(response.status)) return response;
  const error = await errorFrom(response);
  if (response.status === 401) unauthorizedListeners.forEach((listener) => listener());
  throw error;
}

async function json<T>(path: string, options: RequestOptions = {}): Promise<T> {
  return (await (await request(path, options)).json()) as T;
}

function versionOf(response: Response): number {
  const match = /(\d+)/.exec(response.headers.get("ETag") ?? "");
  return match ? Number(match[1]) : 0;
}

export const api = {
  login(email: string, password: string): Promise<User> {
    return json<JsonAnswer<"/api/v1/auth/login", "post">>(`${API}/auth/login`, { method: "POST", json: { email, password } });
  },

  async logout(): Promise<void> {
    await request(`${API}/auth/logout`, { method: "POST" });
  },

  /** The signed-in user, or null without a session. */
  async me(): Promise<User | null> {
    const response = await request(`${API}/users/me`, { accept: [401] });
    return response.status === 401 ? null : ((await response.json()) as JsonAnswer<"/api/v1/users/me", "get">);
  },

  projects(): Promise<Project[]> {
    return json<JsonAnswer<"/api/v1/projects", "get">>(`${API}/projects`);
  },

  project(projectId: number): Promise<ProjectDetail> {
    return json<JsonAnswer<"/api/v1/projects/{project_id}", "get">>(`${API}/projects/${projectId}`);
  },

  /**
   * Leases the next image to label (the caller's own unexpired lease first); null when there
   * is nothing to do. `exclude` names queries the annotator skipped.
   */
  async nextTask(projectId: number, exclude: readonly number[] = []): Promise<Task | null> {
    const query = exclude.map((id) => `exclude=${id}`).join("&");
    const response = await request(
      `${API}/projects/${projectId}/tasks/next${query ? `?${query}` : ""}`,
      { method: "POST", accept: [204] },
    );
    return response.status === 204 ? null : ((await response.json()) as JsonAnswer<"/api/v1/projects/{project_id}/tasks/next", "post">);
  },

  async releaseTask(projectId: number, queryId: number): Promise<void> {
    await request(`${API}/projects/${projectId}/tasks/${queryId}/release`, { method: "POST" });
  },

  /**
   * The task(s) nextTask would most likely hand out after the caller's current one, leasing
   * nothing (pages/lookahead.ts downloads them ahead); [] when none.
   */
  async upcomingTasks(
    projectId: number,
    exclude: readonly number[] = [],
    limit = 1,
  ): Promise<JsonAnswer<"/api/v1/projects/{project_id}/tasks/upcoming", "get">> {
    const query = [...exclude.map((id) => `exclude=${id}`), `limit=${limit}`].join("&");
    const response = await request(`${API}/projects/${projectId}/tasks/upcoming?${query}`, { accept: [204] });
    return response.status === 204 ? [] : ((await response.json()) as JsonAnswer<"/api/v1/projects/{project_id}/tasks/upcoming", "get">);
  },

  async image(link: string): Promise<ImageBitmap> {
    const blob = await (await request(link)).blob();
    return createImageBitmap(blob, { colorSpaceConversion: "none" });
  },

  /**
   * A large image as a downscaled copy to show first and a function that decodes it at full
   * resolution, later; all decoded off the main thread. The copy is the server's preview
   * (`links.preview`, ~0.3 MB) when there is one, and `full` downloads `links.image` only when
   * called; else the whole image is downloaded first and decoded at `size` as well.
   */
  async imagePreview(
    links: { image: string; preview?: string | null },
    size: { width: number; height: number },
  ): Promise<{ preview: ImageBitmap; full: () => Promise<ImageBitmap> }> {
    const previewLink = switchedOn("preview") ? links.preview : null;
    if (previewLink) {
      // A 404: the server's threshold changed since the task was handed out.
      const response = await request(previewLink, { accept: [404] });
      if (response.ok) {
        const preview = await createImageBitmap(await response.blob(), { colorSpaceConversion: "none" });
        return { preview, full: () => api.image(links.image) };
      }
    }
    const blob = await (await request(links.image)).blob();
    const preview = await createImageBitmap(blob, {
      colorSpaceConversion: "none",
      resizeWidth: size.width,
      resizeHeight: size.height,
      resizeQuality: "medium",
    });
    return { preview, full: () => createImageBitmap(blob, { colorSpaceConversion: "none" }) };
  },

  async superpixels(link: string): Promise<SuperpixelMap> {
    const response = await request(link);
    const width = Number(response.headers.get("X-Superpixel-Width"));
    const height = Number(response.headers.get("X-Superpixel-Height"));
    const count = Number(response.headers.get("X-Superpixel-Count"));
    const dtype = response.headers.get("X-Superpixel-Dtype");
    const raw = await zlibDecompress(new Uint8Array(await response.arrayBuffer()));
    let labels: Labels;
    // Little-endian on the wire, as every browser platform is.
    if (dtype === "uint16") labels = new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2);
    else if (dtype === "int32") labels = new Int32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
    else throw new ApiError(0, `Unknown superpixel dtype ${dtype ?? "(none)"}.`);
    if (labels.length !== width * height) {
      throw new ApiError(0, `The superpixel map has ${labels.length} labels for ${width}x${height}.`);
    }
    return { width, height, count, labels };
  },

  /** The current mask PNG and its version. */
  async mask(link: string): Promise<{ png: Uint8Array; version: number }> {
    const response = await request(link);
    return { png: new Uint8Array(await response.arrayBuffer()), version: versionOf(response) };
  },

  /** Saves an edit of the mask version `save.version` (PATCH, see annotator/edit.ts). */
  async editMask(
    link: string,
    edit: MaskEdit,
    save: {
      version: number;
      superpixelMapId: number;
      clicks: number;
      seconds: number;
      prefilled?: boolean;
      done: boolean;
    },
  ): Promise<SaveResult> {
    const body: MaskEditRequest = {
      superpixel_map_id: save.superpixelMapId,
      fills: edit.fills,
      runs: edit.runs,
      clicks: save.clicks,
      seconds: Math.round(save.seconds * 10) / 10,
      prefilled: save.prefilled ?? false,
      done: save.done,
    };
    return json<JsonAnswer<"/api/v1/projects/{project_id}/images/{image_id}/mask", "patch">>(link, {
      method: "PATCH",
      json: body,
      headers: { "If-Match": `"${save.version}"` },
    });
  },

  /** Saves the whole mask PNG (PUT), as scripts do. */
  async saveMask(
    link: string,
    png: Uint8Array,
    save: { version: number; clicks: number; seconds: number; done: boolean },
  ): Promise<SaveResult> {
    const url = new URL(link, location.origin);
    url.searchParams.set("clicks", String(save.clicks));
    url.searchParams.set("seconds", save.seconds.toFixed(1));
    url.searchParams.set("done", String(save.done));
    return json<JsonAnswer<"/api/v1/projects/{project_id}/images/{image_id}/mask", "put">>(url.pathname + url.search, {
      method: "PUT",
      body: new Blob([png as BlobPart], { type: "image/png" }),
      headers: { "Content-Type": "image/png", "If-Match": `"${save.version}"` },
    });
  },

  /** The query's uncertainty PNG, or null when the worker stored none. */
  async uncertainty(link: string): Promise<Uint8Array | null> {
    const response = await request(link, { accept: [404] });
    return response.status === 404 ? null : new Uint8Array(await response.arrayBuffer());
  },
};
