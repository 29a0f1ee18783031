/**
 * The invitation and review parts of the REST API, typed by aliases into the generated
 * api/schema.d.ts (see api/types.ts).
 */
import { API, request } from "../api/client";
import type { JsonAnswer, JsonRequest } from "../api/types";
import type { components } from "../api/schema";
import { type BrowseFilters, filterQuery } from "./filters";

type Schemas = components["schemas"];

export type { ImageState } from "./filters";
export type BrowserImage = Schemas["BrowserImage"];
export type ImagePage = Schemas["ImagePage"];
export type ReviewDetail = Schemas["ReviewDetail"];
export type ReviewRead = Schemas["ReviewRead"];
export type ReviewDecision = Schemas["ReviewDecision"];
export type Person = Schemas["Person"];
export type InvitationRead = Schemas["InvitationRead"];
export type InvitationCreated = Schemas["InvitationCreated"];
export type InvitationPreview = Schemas["InvitationPreview"];
export type InvitationAccepted = Schemas["InvitationAccepted"];
export type RoundRead = Schemas["RoundRead"];

export { type BrowseFilters, IMAGE_STATES, filterQuery, filtersFrom, stateLabel } from "./filters";

async function json<T>(path: string, options: Parameters<typeof request>[1] = {}): Promise<T> {
  return (await (await request(path, options)).json()) as T;
}

const base = (projectId: number): string => `${API}/projects/${projectId}`;

export const reviewApi = {
  images(projectId: number, filters: BrowseFilters): Promise<ImagePage> {
    const query = filterQuery(filters);
    return json<JsonAnswer<"/api/v1/projects/{project_id}/review/images", "get">>(
      `${base(projectId)}/review/images${query ? `?${query}` : ""}`,
    );
  },

  image(projectId: number, imageId: number): Promise<ReviewDetail> {
    return json<JsonAnswer<"/api/v1/projects/{project_id}/review/images/{image_id}", "get">>(
      `${base(projectId)}/review/images/${imageId}`,
    );
  },

  decide(projectId: number, imageId: number, decision: ReviewDecision, comment: string): Promise<ReviewRead> {
    const body: JsonRequest<"/api/v1/projects/{project_id}/review/images/{image_id}", "post"> = { decision, comment };
    return json<JsonAnswer<"/api/v1/projects/{project_id}/review/images/{image_id}", "post">>(
      `${base(projectId)}/review/images/${imageId}`,
      { method: "POST", json: body },
    );
  },

  rounds(projectId: number): Promise<RoundRead[]> {
    return json<JsonAnswer<"/api/v1/projects/{project_id}/rounds", "get">>(`${base(projectId)}/rounds`);
  },

  invitations(projectId: number): Promise<InvitationRead[]> {
    return json<JsonAnswer<"/api/v1/projects/{project_id}/invitations", "get">>(`${base(projectId)}/invitations`);
  },

  invite(projectId: number, body: JsonRequest<"/api/v1/projects/{project_id}/invitations", "post">): Promise<InvitationCreated> {
    return json<JsonAnswer<"/api/v1/projects/{project_id}/invitations", "post">>(`${base(projectId)}/invitations`, {
      method: "POST",
      json: body,
    });
  },

  async revokeInvitation(projectId: number, invitationId: number): Promise<void> {
    await request(`${base(projectId)}/invitations/${invitationId}`, { method: "DELETE" });
  },

  preview(token: string): Promise<InvitationPreview> {
    return json<JsonAnswer<"/api/v1/invitations/{token}", "get">>(`${API}/invitations/${encodeURIComponent(token)}`);
  },

  accept(token: string, password: string, name: string | null): Promise<InvitationAccepted> {
    const body: JsonRequest<"/api/v1/invitations/{token}/accept", "post"> = { password, name };
    return json<JsonAnswer<"/api/v1/invitations/{token}/accept", "post">>(
      `${API}/invitations/${encodeURIComponent(token)}/accept`,
      { method: "POST", json: body },
    );
  },
};
