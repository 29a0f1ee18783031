/**
 * The parts of the REST API (/api/v1, see /api/v1/openapi.json) the browser uses, typed by
 * hand from the backend's pydantic schemas (the schemas.py module of each backend domain).
 */

export type Role = "lead" | "annotator";

export interface User {
  id: number;
  email: string;
  name: string;
  is_admin: boolean;
  is_active: boolean;
  created_at: string;
}

export interface LabelClass {
  id: number;
  index: number;
  name: string;
  colour: string;
}

export interface ProjectSettings {
  superpixel_size: number;
  superpixel_algorithm: string;
  strategy: string;
  static_fraction: number;
  uncertainty: string;
  mc_samples: number;
  initial_images: number;
  images_per_round: number;
  budget_pixels: number | null;
  budget_hours: number | null;
  model_architecture: "efficientnet_lite0" | "unet";
  encoder_weights_path: string | null;
  max_iterations: number | null;
  finetune_max_iterations: number | null;
  early_stopping_patience: number | null;
  validate_every: number;
  image_score: "mean" | "foreground_weighted";
  background_classes: number[];
  class_balance: boolean;
}

export interface Project extends ProjectSettings {
  id: number;
  name: string;
  description: string;
  created_at: string;
}

export interface ProjectDetail extends Project {
  role: Role;
  classes: LabelClass[];
  image_count: number;
}

export interface TaskLinks {
  image: string;
  mask: string;
  superpixels: string;
  uncertainty: string | null;
}

export interface Task {
  query_id: number;
  round_id: number;
  round_number: number;
  image_id: number;
  width: number;
  height: number;
  superpixel_map_id: number;
  superpixel_ids: number[];
  superpixel_scores: number[];
  mask_version: number;
  lease_expires_at: string;
  links: TaskLinks;
}

/** The body of PATCH .../mask: an edit of the version sent as If-Match (annotator/edit.ts). */
export interface MaskEditRequest {
  superpixel_map_id: number;
  /** [superpixel id, class] */
  fills: [number, number][];
  /** [offset, length, class], row-major offsets, sorted, not overlapping */
  runs: [number, number, number][];
  clicks: number;
  seconds: number;
  done: boolean;
}

export interface SaveResult {
  image_id: number;
  version: number;
  changed_pixels: number;
  changed_superpixels: number;
  labeled_pixels: number;
  query_done: boolean;
}
