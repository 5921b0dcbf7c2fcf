from ftpsup.cli import main

raise SystemExit(main())
