/** Every page of the app: the annotator's (login, projects, label) and the lead's (dashboard, manage). */
import { managePage } from "./dashboard/manage";
import { dashboardPage } from "./dashboard/page";
import { findWorkPage, labelPage } from "./pages/label";
import { homePage } from "./pages/home";
import { loginPage } from "./pages/login";
import type { Route } from "./shell/router";

export const ROUTES: readonly Route[] = [
  { pattern: "/login", page: loginPage, public: true, title: "Log in" },
  { pattern: "/", page: homePage, title: "Projects" },
  { pattern: "/label", page: findWorkPage, title: "Label" },
  { pattern: "/projects/:projectId/label", page: labelPage, title: "Label" },
  { pattern: "/projects/:projectId/dashboard", page: dashboardPage, title: "Dashboard" },
  { pattern: "/projects/:projectId/manage", page: managePage, title: "Manage" },
];
