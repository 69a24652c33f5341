"""Helpers shared by test modules (test modules never import each other): fixture model families, in-process
servers, the deployment tests' values and chart rendering, im2txt's random-weight checkpoint."""
