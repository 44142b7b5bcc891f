import sys

from services.worker.cli import main

sys.exit(main())
