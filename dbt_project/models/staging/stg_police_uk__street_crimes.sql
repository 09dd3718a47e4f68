select * from {{ source('police_uk', 'street') }}
