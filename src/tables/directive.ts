import { DirectiveLocation, GraphQLDirective } from 'graphql';

/** `@table`: which list's records are the rows when the operation is answered as a table (src/tables). */
export const TableDirective = new GraphQLDirective({
  name: 'table',
  description:
    'Marks the list or connection whose records are the rows when the operation is asked for as a table (CSV, TSV, NDJSON, Parquet or Arrow: `Accept` or `format=`). Without it, the only innermost list is. A JSON answer ignores it.',
  locations: [DirectiveLocation.FIELD],
});
