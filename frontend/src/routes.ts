/**
 * Every page of the app. The lead dashboard ([E]) adds its pages here, e.g.
 * `{ pattern: "/projects/:projectId/dashboard", page: dashboardPage, title: "Dashboard" }`.
 */
import { findWorkPage, labelPage } from "./pages/label";
import { homePage } from "./pages/home";
import { loginPage } from "./pages/login";
import type { Route } from "./shell/router";

export const ROUTES: readonly Route[] = [
  { pattern: "/login", page: loginPage, public: true, title: "Log in" },
  { pattern: "/", page: homePage, title: "Projects" },
  { pattern: "/label", page: findWorkPage, title: "Label" },
  { pattern: "/projects/:projectId/label", page: labelPage, title: "Label" },
];
