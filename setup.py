"""The console scripts come from the one table of commands (tftransfer/cli/commands.py);
everything else is in setup.cfg."""

import runpy

import setuptools

commands = runpy.run_path('tftransfer/cli/commands.py')
setuptools.setup(entry_points={'console_scripts': commands['entry_points']()})
