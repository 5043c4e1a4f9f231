# exit_at_import: sys.exit() while being imported must not stop the worker.
import sys

print("exit_at_import: calling sys.exit(2)")
sys.exit(2)
