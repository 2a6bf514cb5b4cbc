from services.municipality.app import service

service.main()
