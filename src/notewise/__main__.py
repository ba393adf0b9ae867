import sys

from notewise.cli import main

sys.exit(main())
