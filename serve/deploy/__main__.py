from serve.deploy.cli import main

raise SystemExit(main())
