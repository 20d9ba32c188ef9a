"""Administrators manage accounts and see no case data."""

from __future__ import annotations


def test_administrator_manages_users(demo, client):
    client.force_login(demo["adam.admin"])
    assert client.get("/admin/casework/user/").status_code == 200
    assert client.get("/admin/casework/organisation/").status_code == 200
    other = demo["anna.social"]
    assert client.get(f"/admin/casework/user/{other.pk}/change/").status_code == 200


def test_administrator_cannot_change_own_roles(demo, client):
    admin = demo["adam.admin"]
    client.force_login(admin)
    response = client.get(f"/admin/casework/user/{admin.pk}/change/")
    assert response.status_code == 200
    assert b'name="groups"' not in response.content
    assert b'name="is_superuser"' not in response.content
    assert b'name="user_permissions"' not in response.content


def test_administrator_sees_no_workflow_data_in_admin(demo, client):
    client.force_login(demo["adam.admin"])
    assert client.get("/admin/viewflow/process/").status_code == 404
    assert client.get("/admin/viewflow/task/").status_code == 404


def test_case_worker_cannot_use_admin(demo, client):
    client.force_login(demo["anna.social"])
    response = client.get("/admin/casework/user/")
    assert response.status_code == 302
