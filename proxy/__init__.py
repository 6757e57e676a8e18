"""proxy: the service. Process wiring at the top (serve, app, chores, probes, errors), and one
package per part: config/, observability/, gateway/ (the request path), durability/,
admin/, cli/ and simulator/. README.md, "How it works", has the map."""
