from uvox.cli import main

main()
