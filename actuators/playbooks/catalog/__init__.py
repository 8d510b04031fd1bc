"""Shipped playbooks, one YAML file per playbook (a package so the files ship as package data)."""
