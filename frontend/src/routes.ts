/**
 * Every page of the app: the annotator's (login, invitation, projects, label) and the lead's
 * (dashboard, images and review, manage).
 */
import { managePage } from "./dashboard/manage";
import { dashboardPage } from "./dashboard/page";
import { findWorkPage, labelPage } from "./pages/label";
import { homePage } from "./pages/home";
import { invitePage } from "./pages/invite";
import { loginPage } from "./pages/login";
import { imagesPage } from "./review/browser";
import { reviewPage } from "./review/page";
import type { Route } from "./shell/router";

export const ROUTES: readonly Route[] = [
  { pattern: "/login", page: loginPage, public: true, title: "Log in" },
  { pattern: "/", page: homePage, title: "Projects" },
  { pattern: "/label", page: findWorkPage, title: "Label" },
  { pattern: "/projects/:projectId/label", page: labelPage, title: "Label" },
  { pattern: "/projects/:projectId/dashboard", page: dashboardPage, title: "Dashboard" },
  { pattern: "/projects/:projectId/manage", page: managePage, title: "Manage" },
  { pattern: "/projects/:projectId/images", page: imagesPage, title: "Images" },
  { pattern: "/projects/:projectId/review/:imageId", page: reviewPage, title: "Review" },
  { pattern: "/invite/:token", page: invitePage, public: true, title: "Join" },
];
