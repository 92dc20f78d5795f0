from emotag.cli import main

main()
