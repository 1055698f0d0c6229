from django.urls import path

from styrkort.grants import views

app_name = "grants"
G = "<int:grant_id>/"
A = G + "accounts/<int:unit_id>/"
urlpatterns = [
    path("", views.grant_list, name="list"),
    path("new/", views.grant_create, name="create"),
    path("national/", views.national, name="national"),
    path("national/<int:distribution_id>/", views.national_detail, name="national_detail"),
    path(G, views.grant_detail, name="detail"),
    path(G + "edit/", views.grant_edit, name="edit"),
    path(G + "transition/", views.grant_transition, name="transition"),
    path(G + "plans/new/", views.plan_new, name="plan_new"),
    path(G + "plans/<int:plan_id>/", views.plan_detail, name="plan_detail"),
    path(G + "plans/<int:plan_id>/edit/", views.plan_edit, name="plan_edit"),
    path(G + "plans/<int:plan_id>/decide/", views.plan_decide, name="plan_decide"),
    path(G + "accounts/", views.accounts, name="accounts"),
    path(G + "accounts/reminder/", views.accounts_reminder, name="accounts_reminder"),
    path(A, views.account, name="account"),
    path(A + "review/", views.account_review, name="account_review"),
    path(A + "attachments/", views.attachment_add, name="attachment_add"),
    path(A + "attachments/<int:attachment_id>/", views.attachment, name="attachment"),
    path(
        A + "attachments/<int:attachment_id>/delete/",
        views.attachment_delete,
        name="attachment_delete",
    ),
    path(G + "repayment/", views.repayment, name="repayment"),
    path(G + "report/", views.report, name="report"),
    path(G + "report/<int:version>/", views.report_version, name="report_version"),
    path(G + "report/<int:version>/pdf/", views.report_pdf, name="report_pdf"),
    path(G + "report/<int:version>/xlsx/", views.report_xlsx, name="report_xlsx"),
]
