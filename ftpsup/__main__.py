from ftpsup.cli.main import main

raise SystemExit(main())
