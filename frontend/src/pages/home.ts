/**
 * The project list: annotators go straight to work; a lead whose only project it is lands on
 * its dashboard; others pick a project.
 */
import { api } from "../api/client";
import type { ProjectDetail } from "../api/types";
import { h } from "../shell/dom";
import { frame } from "../shell/layout";
import { navigate } from "../shell/navigation";
import type { Page } from "../shell/router";
import { currentUser } from "../shell/session";

export const homePage: Page = async (root) => {
  const user = await currentUser();
  const projects = await Promise.all((await api.projects()).map((p) => api.project(p.id)));
  const leads = projects.some((project) => project.role === "lead");
  const only = projects.length === 1 ? projects[0] : undefined;
  if (only && only.role === "lead" && !user?.is_admin) {
    // A lead with one project has one place to be (the list stays for anyone with more).
    navigate(`/projects/${only.id}/dashboard`, { replace: true });
    return;
  }
  if (!leads && projects.length > 0) {
    // Annotators have one job here: the next task.
    navigate("/label", { replace: true });
    return;
  }
  const card = (project: ProjectDetail): HTMLElement =>
    h(
      "li",
      { class: "project-card", "data-project-id": project.id },
      h("h2", {}, project.name),
      h("p", { class: "muted" }, `${project.image_count} images · ${project.strategy} strategy · you are ${project.role}`),
      h("a", { href: `/projects/${project.id}/label`, "data-link": true, class: "button primary" }, "Label"),
      project.role === "lead"
        ? h("a", { href: `/projects/${project.id}/dashboard`, "data-link": true, class: "button" }, "Dashboard")
        : null,
    );
  root.append(
    frame(
      user,
      h("h1", {}, "Projects"),
      projects.length === 0
        ? h("p", { class: "muted" }, "You are not a member of any project yet. Ask a project lead to add you.")
        : h("ul", { class: "project-list" }, ...projects.map(card)),
    ),
  );
};
