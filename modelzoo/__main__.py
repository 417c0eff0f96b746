from modelzoo.cli import main

main()
