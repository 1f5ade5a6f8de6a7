import sys

from farmctl.cli import main

sys.exit(main())
