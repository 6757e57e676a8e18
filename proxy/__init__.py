"""proxy: the aiohttp application, its CLI and the simulated upstream."""
