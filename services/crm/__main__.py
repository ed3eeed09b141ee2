from services.crm.main import main

main()
