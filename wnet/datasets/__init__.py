"""Datasets: procedural default, unlabelled image folders, BSDS500, paired image/mask folders."""
