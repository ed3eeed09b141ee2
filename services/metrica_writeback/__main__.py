from services.metrica_writeback.worker import main

main()
