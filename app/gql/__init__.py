"""The Python side of the GraphQL contract in ``graphql/`` (schema, resolvers, types)."""
